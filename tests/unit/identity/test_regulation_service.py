"""The Regulator over real storage: in-memory counters (``limits``) and a SQLite database.

Ban times follow the services' (fixed) clock. Counting windows are real seconds, because
``limits`` reads the wall clock itself: the one window test uses a one-second window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.identity import (
    InvalidBanSubject,
    Limit,
    RegulationPolicy,
    RegulationUnavailable,
    Regulator,
)
from nevertrust.regulation_storage import LimitsFailureCounter, open_failure_counter

IP = "192.0.2.7"
POLICY = RegulationPolicy(
    user=Limit(max_retries=3, find_time=timedelta(minutes=2), ban_time=timedelta(minutes=5)),
    ip=Limit(max_retries=20, find_time=timedelta(minutes=5), ban_time=timedelta(minutes=15)),
)


def regulator_for(
    svc: Services, policy: RegulationPolicy = POLICY, counter: LimitsFailureCounter | None = None
) -> Iterator[Regulator]:
    reg = Regulator(
        uow=svc.uow,
        clock=svc.clock,
        counter=counter or open_failure_counter("", key_prefix="unused"),
        policy=policy,
    )
    yield reg
    reg.close()


@pytest.fixture
def reg(services: Services) -> Iterator[Regulator]:
    yield from regulator_for(services)


def fail(reg: Regulator, times: int, username: str = "alice", ip: str = IP) -> None:
    for _ in range(times):
        reg.record_failure(username, ip)


def audit_of(svc: Services, action: Action) -> list[tuple[str, str, str]]:
    with svc.uow.read() as uow:
        return [(r.actor, r.target, r.source) for r in uow.audit.iterate() if r.action == action]


def test_the_third_failure_within_the_window_bans_the_name(
    reg: Regulator, services: Services, clock: FixedClock
) -> None:
    fail(reg, 2)
    assert not reg.banned("alice", IP)

    fail(reg, 1)

    assert reg.banned("alice", IP)
    # From anywhere, under any spelling: it is the name that is banned.
    assert reg.banned("Alice", "198.51.100.1")
    assert not reg.banned("bob", IP)
    [ban] = reg.list_bans()
    assert (ban.subject, ban.failures) == ("user:alice", 3)
    assert ban.created_at == clock.now()
    assert ban.expires_at == clock.now() + timedelta(minutes=5)
    assert audit_of(services, Action.BAN_CREATED) == [("system:regulation", "user:alice", IP)]


def test_spellings_of_one_name_share_one_count(reg: Regulator) -> None:
    for typed in ("alice", "ALICE", " Alice "):
        reg.record_failure(typed, IP)

    assert reg.banned("alice", IP)


def test_a_ban_ends_after_ban_time_and_the_count_starts_afresh(
    reg: Regulator, clock: FixedClock
) -> None:
    fail(reg, 3)
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert reg.banned("alice", IP)

    clock.advance(timedelta(seconds=1))
    assert not reg.banned("alice", IP)
    assert reg.list_bans() == []

    # The failures that caused the ban do not count again: one more is not a new ban...
    fail(reg, 1)
    assert not reg.banned("alice", IP)
    # ...a full new run is.
    fail(reg, 2)
    assert reg.banned("alice", IP)


def test_attempts_refused_during_a_ban_neither_count_nor_extend_it(
    reg: Regulator, clock: FixedClock
) -> None:
    fail(reg, 3)
    [ban] = reg.list_bans()

    fail(reg, 10)

    assert reg.list_bans() == [ban]
    clock.advance(timedelta(minutes=5))
    fail(reg, 2)
    assert not reg.banned("alice", IP)


def test_success_forgets_the_names_failures_but_not_the_addresss(services: Services) -> None:
    policy = RegulationPolicy(
        user=POLICY.user,
        ip=Limit(max_retries=4, find_time=timedelta(minutes=5), ban_time=timedelta(minutes=15)),
    )
    for reg in regulator_for(services, policy):
        fail(reg, 2)
        reg.record_success("alice", IP)
        fail(reg, 1)
        assert not reg.banned("alice", "198.51.100.1")

        # Four failures from this address in all, one success between them: banned.
        fail(reg, 1, username="bob")
        assert reg.banned("carol", IP)
        assert [b.subject for b in reg.list_bans()] == [f"ip:{IP}"]


def test_twenty_failures_from_one_address_ban_it_for_every_name(reg: Regulator) -> None:
    # Password spraying: one guess each against many names never bans a name...
    for n in range(19):
        reg.record_failure(f"user{n}", IP)
    assert not reg.banned("someone", IP)

    reg.record_failure("user19", IP)

    # ...but the address is banned, whoever it tries next; other addresses are not.
    assert reg.banned("someone", IP)
    assert not reg.banned("someone", "192.0.2.8")
    assert [(b.subject, b.failures) for b in reg.list_bans()] == [(f"ip:{IP}", 20)]


def test_hopping_addresses_inside_one_ipv6_64_does_not_reset_the_count(
    services: Services,
) -> None:
    policy = RegulationPolicy(
        user=POLICY.user,
        ip=Limit(max_retries=3, find_time=timedelta(minutes=5), ban_time=timedelta(minutes=15)),
    )
    for reg in regulator_for(services, policy):
        for n, host in enumerate(("::1", "::2", "::ffff:1")):
            reg.record_failure(f"user{n}", f"2001:db8:1:2{host}")

        assert reg.banned("anyone", "2001:db8:1:2::abcd")
        assert not reg.banned("anyone", "2001:db8:1:3::1")


def test_failures_older_than_find_time_no_longer_count(services: Services) -> None:
    policy = RegulationPolicy(
        user=Limit(max_retries=3, find_time=timedelta(seconds=1), ban_time=timedelta(minutes=5)),
        ip=POLICY.ip,
    )
    for reg in regulator_for(services, policy):
        fail(reg, 2)
        time.sleep(1.1)
        fail(reg, 2)
        assert not reg.banned("alice", IP)

        fail(reg, 1)  # three within one second
        assert reg.banned("alice", IP)


def test_lifting_ends_the_ban_clears_the_count_and_is_audited(
    reg: Regulator, services: Services
) -> None:
    fail(reg, 3)

    assert reg.lift("user:Alice", actor="user:root") == 1

    assert not reg.banned("alice", IP)
    assert reg.list_bans() == []
    fail(reg, 2)
    assert not reg.banned("alice", IP)
    assert audit_of(services, Action.BAN_LIFTED) == [("user:root", "user:alice", "")]


def test_lifting_without_a_ban_still_clears_the_count(reg: Regulator) -> None:
    fail(reg, 2)

    assert reg.lift("user:alice", actor="user:root") == 0

    fail(reg, 2)
    assert not reg.banned("alice", IP)


def test_lifting_a_subject_that_means_nothing_changes_nothing(
    reg: Regulator, services: Services
) -> None:
    fail(reg, 3)

    with pytest.raises(InvalidBanSubject):
        reg.lift("alice", actor="user:root")

    assert reg.banned("alice", IP)
    assert audit_of(services, Action.BAN_LIFTED) == []


def test_disabled_regulation_never_bans(services: Services) -> None:
    off = RegulationPolicy(user=POLICY.user, ip=POLICY.ip, enabled=False)
    for reg in regulator_for(services, off):
        fail(reg, 50)

        assert not reg.banned("alice", IP)
        assert reg.list_bans() == []


@pytest.fixture
def loopback_only() -> Iterator[None]:
    """Let this test reach 127.0.0.1 (a closed port), and nothing else."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield


def test_an_unreachable_redis_fails_closed(
    loopback_only: None, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    broken = open_failure_counter("redis://127.0.0.1:1/0", key_prefix="unreachable")
    for reg in regulator_for(services, counter=broken):
        with caplog.at_level(logging.ERROR, logger="nevertrust.regulation"):
            # Nobody is banned, yet nobody may try: failures could not be counted.
            assert reg.banned("alice", IP)
            assert reg.banned("nobody-at-all", "198.51.100.1")
        assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR]
        assert "refusing" in caplog.records[0].getMessage()

        # Counting and resetting never raise into the sign-in that called them...
        reg.record_failure("alice", IP)
        reg.record_success("alice", IP)
        # ...but an admin's lift says it could not be done, and changes nothing.
        with pytest.raises(RegulationUnavailable):
            reg.lift("user:alice", actor="user:root")
        assert audit_of(services, Action.BAN_LIFTED) == []
