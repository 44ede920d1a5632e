from __future__ import annotations

import pytest

from nevertrust.bus import ChangeEvent, MemoryBus, Topic


def test_every_subscriber_receives_each_event_in_order() -> None:
    bus = MemoryBus()
    seen_a: list[ChangeEvent] = []
    seen_b: list[ChangeEvent] = []
    bus.subscribe(seen_a.append)
    bus.subscribe(seen_b.append)
    events = [
        ChangeEvent(Topic.USER, "1"),
        ChangeEvent(Topic.SESSION, "h"),
        ChangeEvent(Topic.EVERYTHING),
    ]
    for event in events:
        bus.publish(event)
    assert seen_a == events
    assert seen_b == events


def test_publish_without_subscribers_is_harmless() -> None:
    MemoryBus().publish(ChangeEvent(Topic.APP, "whoami"))


def test_a_failing_subscriber_does_not_starve_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MemoryBus()
    seen: list[ChangeEvent] = []

    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish(ChangeEvent(Topic.RULE, "whoami"))
    assert seen == [ChangeEvent(Topic.RULE, "whoami")]
    assert any(r.message == "event_handler_failed" for r in caplog.records)


def test_topic_values_are_stable() -> None:
    assert [t.value for t in Topic] == [
        "user",
        "group",
        "app",
        "rule",
        "session",
        "user-sessions",
        "config",
        "policy",
        "signing-key",
        "device",
        "everything",
    ]
