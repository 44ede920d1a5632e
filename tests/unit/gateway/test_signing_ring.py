"""SigningKeyRing: the gateway's signer follows rotations without reading storage per
request, and keeps signing with the key it has when a reload fails."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import jwt
import pytest

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.gateway.keys import SigningKey
from nevertrust.gateway.signing import SigningKeyRing, maintain_signing_keys

HOUR = timedelta(hours=1)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def ring_for(svc: Services, load: Callable[[], SigningKey] | None = None) -> SigningKeyRing:
    ring = SigningKeyRing(load=load or svc.keys.active, issuer="http://auth.localhost",
                          ttl_seconds=60)  # fmt: skip
    svc.bus.subscribe(ring.on_event)
    return ring


def signed_kid(ring: SigningKeyRing, clock: FixedClock) -> str:
    token = ring.sign(
        audience="http://whoami.localhost", subject="1", name="alice", groups=[], email="",
        auth_methods=["pwd"], auth_time=clock.now(), now=clock.now(),
    )  # fmt: skip
    return str(jwt.get_unverified_header(token)["kid"])


def test_signs_with_the_active_key_and_switches_after_a_rotation(
    services: Services, clock: FixedClock
) -> None:
    ring = ring_for(services)
    first = ring.kid
    assert signed_kid(ring, clock) == first

    # The rotation's commit publishes a signing-key event on this process's bus.
    new = services.keys.rotate(actor="user:root", overlap=HOUR).active.kid

    assert wait_until(lambda: ring.kid == new)
    assert signed_kid(ring, clock) == new
    assert ring.ttl_seconds == 60


def test_signing_reads_no_storage(services: Services, clock: FixedClock) -> None:
    loads: list[str] = []

    def load() -> SigningKey:
        key = services.keys.active()
        loads.append(key.kid)
        return key

    ring = ring_for(services, load)
    for _ in range(100):
        signed_kid(ring, clock)
    assert len(loads) == 1


def test_a_failed_reload_keeps_the_current_key_and_is_logged(
    services: Services, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = [True]

    def load() -> SigningKey:
        if not healthy[0]:
            raise ConnectionError("database unreachable")
        return services.keys.active()

    ring = ring_for(services, load)
    first = ring.kid
    healthy[0] = False
    with caplog.at_level(logging.ERROR, logger="nevertrust.gateway"):
        assert ring.reload() is False
    assert "signing_key_reload_failed" in caplog.messages
    assert (ring.kid, ring.stale) == (first, True)
    assert signed_kid(ring, clock) == first

    healthy[0] = True
    assert ring.reload() is True
    assert ring.stale is False


def test_other_topics_do_not_reload_and_a_lost_feed_does(services: Services) -> None:
    loads = threading.Semaphore(0)

    def load() -> SigningKey:
        loads.release()
        return services.keys.active()

    ring = ring_for(services, load)
    assert loads.acquire(timeout=1)  # the initial load
    ring.on_event(ChangeEvent(Topic.USER, "1"))
    ring.on_event(ChangeEvent(Topic.SESSION, "abc"))
    assert not loads.acquire(timeout=0.2)
    ring.on_event(ChangeEvent(Topic.EVERYTHING))
    assert loads.acquire(timeout=10)


def test_a_burst_of_events_is_coalesced_into_few_reloads(services: Services) -> None:
    gate = threading.Event()
    calls: list[int] = []

    def load() -> SigningKey:
        calls.append(1)
        if len(calls) > 1:
            gate.wait(10)  # hold the first background reload while events pile up
        return services.keys.active()

    ring = ring_for(services, load)
    ring.on_event(ChangeEvent(Topic.SIGNING_KEY, "x"))
    assert wait_until(lambda: len(calls) == 2)  # the background reload is under way
    for _ in range(49):
        ring.on_event(ChangeEvent(Topic.SIGNING_KEY, "x"))
    gate.set()
    # One reload was running while the other 49 events arrived: they cost one more.
    assert wait_until(lambda: ring._worker is None)
    assert len(calls) == 1 + 2


async def test_maintenance_rotates_a_due_key_and_the_ring_follows(
    services: Services, clock: FixedClock
) -> None:
    ring = ring_for(services)
    first = ring.kid
    clock.advance(timedelta(days=31))
    task = asyncio.create_task(
        maintain_signing_keys(services.keys, ring, rotation_days=30, overlap_minutes=60)
    )
    try:
        deadline = time.monotonic() + 10
        while ring.kid == first and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ring.kid != first
    assert ring.kid == services.keys.active().kid
