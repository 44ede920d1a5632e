"""Patch age: whole days from the last update to now, never negative."""

from __future__ import annotations

from datetime import datetime

__all__ = ["days_since"]


def days_since(last: datetime, now: datetime) -> int:
    """Whole days between ``last`` and ``now`` (both naive local times, or both aware).

    A clock that runs behind the update log gives 0, not a negative age.
    """
    return max(0, (now - last).days)
