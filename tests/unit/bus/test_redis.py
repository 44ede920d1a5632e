"""RedisBus without a reachable Redis: writes go on, local caches still hear of them.

Redis here is a Unix socket path nobody listens on (unit tests run with TCP off), which
is what a stopped Redis looks like to a client. With Redis running, see
tests/integration/test_redis_bus.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from nevertrust.bus import ChangeEvent, Topic
from nevertrust.bus.redis import CHANNEL_PREFIX, RedisBus, channel_for
from nevertrust.crypto import MasterKey


def unreachable(tmp_path: Path) -> str:
    return f"unix://:hunter2-not-logged@{tmp_path / 'no-redis.sock'}"


def test_replicas_sharing_a_master_key_share_a_channel_and_other_deployments_do_not() -> None:
    key = bytes(range(32))
    same = channel_for(MasterKey(key)), channel_for(MasterKey(key))
    other = channel_for(MasterKey(bytes(32)))

    assert same[0] == same[1]
    assert other != same[0]
    assert same[0].startswith(CHANNEL_PREFIX)
    assert len(same[0]) == len(CHANNEL_PREFIX) + 16


def test_with_redis_down_a_publish_still_reaches_local_subscribers_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisBus(unreachable(tmp_path), channel="nevertrust:test")
    seen: list[ChangeEvent] = []
    bus.subscribe(seen.append)
    events = [ChangeEvent(Topic.USER, "7"), ChangeEvent(Topic.USER_SESSIONS, "7")]

    with caplog.at_level(logging.WARNING, logger="nevertrust.bus"):
        for event in events:
            bus.publish(event)  # must not raise: the write it follows is committed
    bus.close()

    assert seen == events
    failures = [r for r in caplog.records if r.message == "bus_publish_failed"]
    # The first failure is logged; the second publish, inside the back-off, is not even
    # tried, so a Redis outage costs writers nothing after the first attempt.
    assert len(failures) == 1
    assert bus.publish_failures == 2
    assert "hunter2" not in caplog.text


def test_during_the_back_off_publishing_does_not_wait_for_redis(tmp_path: Path) -> None:
    bus = RedisBus(unreachable(tmp_path), channel="nevertrust:test", timeout=0.5)
    bus.publish(ChangeEvent(Topic.GROUP, "first"))

    started = time.perf_counter()
    for n in range(100):
        bus.publish(ChangeEvent(Topic.GROUP, f"g{n}"))
    elapsed = time.perf_counter() - started
    bus.close()

    assert bus.publish_failures == 101
    assert elapsed < 0.05
