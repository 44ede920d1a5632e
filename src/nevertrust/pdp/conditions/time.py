"""When: days of the week and hours of the day, in a named time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nevertrust.pdp.conditions._base import Condition

__all__ = ["time_window"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _expand_days(spec: list[str]) -> frozenset[int]:
    days: set[int] = set()
    for item in spec:
        first, _, last = item.partition("-")
        start, end = _DAYS.index(first), _DAYS.index(last or first)
        index = start
        while True:  # ranges may wrap: fri-mon
            days.add(index)
            if index == end:
                break
            index = (index + 1) % 7
    return frozenset(days)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def time_window(*, days: list[str] | None, hours: str | None, timezone: str) -> Condition:
    zone = ZoneInfo(timezone)
    # An empty list matches no day, like every list condition (it used to mean every day).
    allowed_days = _expand_days(days) if days is not None else None
    start = end = 0
    if hours:
        first, last = hours.split("-")
        start, end = _minutes(first), _minutes(last)

    def test(_r: object, now: datetime) -> bool:
        local = now.astimezone(zone)
        if allowed_days is not None and local.weekday() not in allowed_days:
            return False
        if hours:
            minute = local.hour * 60 + local.minute
            # A window such as 22:00-06:00 wraps past midnight.
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if not inside:
                return False
        return True

    def explain(_r: object, now: datetime) -> str:
        local = now.astimezone(zone)
        return (
            f"allowed {'every day' if days is None else ', '.join(days) or 'no day'} "
            f"{hours or 'all day'} {timezone}; "
            f"it is {_DAYS[local.weekday()]} {local:%H:%M} there"
        )

    return Condition("time", test, explain)
