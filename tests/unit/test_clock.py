from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nevertrust.clock import FixedClock, SystemClock


def test_fixed_clock_stands_still_until_advanced() -> None:
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    clock = FixedClock(start)
    assert clock.now() == start
    assert clock.now() == start
    clock.advance(timedelta(seconds=90))
    assert clock.now() == start + timedelta(seconds=90)


def test_system_clock_is_timezone_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
