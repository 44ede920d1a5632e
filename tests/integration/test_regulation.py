"""Brute-force regulation across replicas: counters in real Redis, bans in the database.

Each replica is a separate ``Services`` (own engine, own Redis connections) on the same
database and Redis, as two servers behind a load balancer are. Each test uses its own Redis
key prefix, so parallel tests never share a counter.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis

from nevertrust.app import Services, build_services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.identity import InvalidCredentials, Passwords
from nevertrust.regulation_storage import key_prefix_for
from nevertrust.settings import RegulationSettings

from ._support import PASSWORD, audit_actions

pytestmark = pytest.mark.redis

IP = "203.0.113.9"


def wipe(redis_url: str, prefix: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def keys_under(redis_url: str, prefix: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url) as client:
        return list(client.scan_iter(match=f"{prefix}:*"))


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"nt-test:{uuid.uuid4().hex}"
    yield value
    wipe(redis_url, value)


@pytest.fixture
def open_replica(
    any_services: Services,
    redis_url: str,
    prefix: str,
    clock: FixedClock,
    fast_passwords: Passwords,
) -> Iterator[Callable[[], Services]]:
    any_services.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    settings = any_services.settings.model_copy(
        update={"redis_url": redis_url, "regulation": RegulationSettings(key_prefix=prefix)}
    )
    opened: list[Services] = []

    def open_() -> Services:
        replica = build_services(settings, clock=clock, passwords=fast_passwords, migrate=False)
        opened.append(replica)
        return replica

    yield open_
    for replica in opened:
        replica.close()


@pytest.fixture
def a(open_replica: Callable[[], Services]) -> Services:
    return open_replica()


@pytest.fixture
def b(open_replica: Callable[[], Services]) -> Services:
    return open_replica()


def wrong(svc: Services, username: str = "alice", ip: str = IP) -> None:
    with pytest.raises(InvalidCredentials):
        svc.auth.login(username, "not the password at all", source_ip=ip, user_agent="t")


def right(svc: Services, ip: str = IP) -> None:
    svc.auth.login("alice", PASSWORD, source_ip=ip, user_agent="t")


def test_failures_spread_over_replicas_add_up_to_one_ban(
    a: Services, b: Services, redis_url: str, prefix: str
) -> None:
    wrong(a)
    wrong(b)
    assert not a.regulator.banned("alice", IP)
    wrong(a)

    # Both replicas refuse the right password now, from any address.
    for replica in (a, b):
        assert replica.regulator.banned("alice", "198.51.100.4")
        with pytest.raises(InvalidCredentials):
            right(replica, ip="198.51.100.4")
    assert [x.subject for x in b.regulator.list_bans()] == ["user:alice"]
    # The counts really live in Redis, under this deployment's prefix.
    assert keys_under(redis_url, prefix)


def test_an_address_spraying_names_over_replicas_is_banned_everywhere(
    a: Services, b: Services
) -> None:
    for n in range(20):
        wrong(a if n % 2 else b, username=f"name{n}")

    assert a.regulator.banned("alice", IP)
    assert b.regulator.banned("alice", IP)
    assert not b.regulator.banned("alice", "203.0.113.10")
    assert [(x.subject, x.failures) for x in a.regulator.list_bans()] == [(f"ip:{IP}", 20)]


def test_a_success_on_one_replica_resets_the_names_count_on_all(a: Services, b: Services) -> None:
    wrong(a)
    wrong(a)
    right(b)
    wrong(a)
    wrong(b)

    assert not a.regulator.banned("alice", "198.51.100.4")
    right(a, ip="198.51.100.4")


def test_lifting_on_one_replica_lets_every_replica_in_again(
    a: Services, b: Services, any_services: Services
) -> None:
    for _ in range(3):
        wrong(a)
    assert b.regulator.banned("alice", IP)

    assert b.regulator.lift("user:alice", actor="user:root") == 1

    right(a)
    # The ban's failures are gone everywhere: two more are not a new ban.
    wrong(b)
    wrong(a)
    right(b)
    assert audit_actions(any_services).count(Action.BAN_LIFTED) == 1


def test_lifting_without_a_ban_clears_the_shared_count(a: Services, b: Services) -> None:
    wrong(a)
    wrong(b)

    assert a.regulator.lift("user:alice", actor="user:root") == 0

    wrong(b)
    wrong(a)
    right(b)


def test_bans_expire_on_the_services_clock(a: Services, b: Services, clock: FixedClock) -> None:
    for _ in range(3):
        wrong(a)

    clock.advance(timedelta(minutes=5))

    assert not b.regulator.banned("alice", IP)
    right(b)


def test_concurrent_failures_on_two_replicas_ban_at_the_third(a: Services, b: Services) -> None:
    # Two replicas hammering in parallel: the count is shared and exact, so the ban comes
    # as soon as the third failure lands, however the attempts interleave. (Two replicas
    # crossing the limit at the same instant may each write a ban row: lift ends both.)
    barrier = threading.Barrier(2)

    def hammer(svc: Services) -> None:
        barrier.wait()
        for _ in range(5):
            svc.regulator.record_failure("alice", IP)

    threads = [threading.Thread(target=hammer, args=(svc,)) for svc in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    bans = a.regulator.list_bans()
    assert {x.subject for x in bans} == {"user:alice"}
    assert all(x.failures == 3 for x in bans)


def test_replicas_of_one_deployment_derive_the_same_key_prefix(
    any_services: Services, redis_url: str, fast_passwords: Passwords, clock: FixedClock
) -> None:
    # No prefix configured: it comes from the master key, which replicas share and other
    # deployments on the same Redis do not.
    settings = any_services.settings.model_copy(update={"redis_url": redis_url})
    prefix = key_prefix_for(any_services.master_key)
    first = build_services(settings, clock=clock, passwords=fast_passwords, migrate=False)
    second = build_services(settings, clock=clock, passwords=fast_passwords, migrate=False)
    try:
        for replica in (first, second, first):
            replica.regulator.record_failure("mallory", IP)
        assert first.regulator.banned("mallory", IP)
        assert keys_under(redis_url, prefix)
    finally:
        first.close()
        second.close()
        wipe(redis_url, prefix)
