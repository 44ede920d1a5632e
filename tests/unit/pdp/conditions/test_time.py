from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nevertrust.pdp.conditions.time import time_window

from ._helpers import request

# 2026-11-23 is a Monday.
MON = datetime(2026, 11, 23, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` 0 = Monday 23 Nov 2026, in UTC."""
    return MON.replace(day=23 + day, hour=hour, minute=minute)


@pytest.mark.parametrize(
    ("days", "day", "holds"),
    [
        (["mon"], 0, True),
        (["mon"], 1, False),
        (["mon-fri"], 4, True),
        (["mon-fri"], 5, False),
        (["fri-mon"], 5, True),  # ranges wrap around the week
        (["fri-mon"], 0, True),
        (["fri-mon"], 2, False),
        (["sat", "tue-wed"], 2, True),
        (["wed-wed"], 2, True),
        ([], 0, False),  # an empty list matches no day
    ],
)
def test_days_hold_on_listed_days_and_ranges(days: list[str], day: int, holds: bool) -> None:
    condition = time_window(days=days, hours=None, timezone="UTC")
    assert condition.test(request(), at(day, 12)) is holds


@pytest.mark.parametrize(
    ("hours", "hour", "minute", "holds"),
    [
        ("08:00-18:00", 8, 0, True),  # the start is inside
        ("08:00-18:00", 17, 59, True),
        ("08:00-18:00", 18, 0, False),  # the end is not (half-open)
        ("08:00-18:00", 7, 59, False),
        ("22:00-06:00", 23, 30, True),  # wraps past midnight
        ("22:00-06:00", 5, 59, True),
        ("22:00-06:00", 6, 0, False),
        ("22:00-06:00", 12, 0, False),
        ("00:00-24:00", 0, 0, True),
        ("00:00-24:00", 23, 59, True),
    ],
)
def test_hours_are_half_open_and_may_wrap(hours: str, hour: int, minute: int, holds: bool) -> None:
    condition = time_window(days=None, hours=hours, timezone="UTC")
    assert condition.test(request(), at(2, hour, minute)) is holds


def test_days_and_hours_must_both_hold() -> None:
    condition = time_window(days=["mon-fri"], hours="09:00-17:00", timezone="UTC")
    assert condition.test(request(), at(0, 10))
    assert not condition.test(request(), at(5, 10))  # Saturday
    assert not condition.test(request(), at(0, 18))


def test_the_window_is_read_in_the_given_time_zone() -> None:
    # 23:30 UTC on Friday is already Saturday 00:30 in Berlin (CET, UTC+1).
    friday_night = at(4, 23, 30)
    berlin = time_window(days=["sat"], hours="00:00-01:00", timezone="Europe/Berlin")
    utc = time_window(days=["sat"], hours="00:00-01:00", timezone="UTC")
    assert berlin.test(request(), friday_night)
    assert not utc.test(request(), friday_night)


def test_daylight_saving_time_moves_the_utc_window() -> None:
    office = time_window(days=None, hours="09:00-10:00", timezone="Europe/Berlin")
    winter = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)  # 09:30 CET
    summer = datetime(2026, 7, 15, 8, 30, tzinfo=UTC)  # 10:30 CEST
    assert office.test(request(), winter)
    assert not office.test(request(), summer)


def test_no_days_and_no_hours_always_holds() -> None:
    assert time_window(days=None, hours=None, timezone="UTC").test(request(), at(6, 3))


def test_explains_the_window_and_the_local_time() -> None:
    condition = time_window(days=["mon-fri"], hours="09:00-17:00", timezone="Europe/Berlin")
    assert condition.name == "time"
    assert condition.explain(request(), at(5, 20)) == (
        "allowed mon-fri 09:00-17:00 Europe/Berlin; it is sat 21:00 there"
    )
    every_day = time_window(days=None, hours="09:00-17:00", timezone="UTC")
    assert every_day.explain(request(), at(0, 8)) == (
        "allowed every day 09:00-17:00 UTC; it is mon 08:00 there"
    )
    no_day = time_window(days=[], hours=None, timezone="UTC")
    assert (
        no_day.explain(request(), at(0, 8)) == "allowed no day all day UTC; it is mon 08:00 there"
    )
