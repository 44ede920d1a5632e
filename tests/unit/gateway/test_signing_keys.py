"""The signing-key lifecycle rules (pure): which key signs, which are published, and
what a rotation schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nevertrust.gateway.models import KeyState, StoredKey
from nevertrust.gateway.signing_keys import (
    InvalidOverlap,
    check_overlap,
    choose_active,
    is_due,
    published,
    rotation_retirements,
    view_of,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def key(kid: str, *, age: timedelta, retired_in: timedelta | None = None) -> StoredKey:
    retired_at = None if retired_in is None else NOW + retired_in
    return StoredKey(kid, "ES256", b"", "{}", NOW - age, retired_at)


def test_the_newest_unscheduled_key_is_active() -> None:
    keys = [
        key("old", age=10 * HOUR),
        key("newest-but-retiring", age=HOUR, retired_in=HOUR),
        key("new", age=2 * HOUR),
    ]
    assert choose_active(keys) == keys[2]
    assert choose_active(reversed(keys)) == keys[2]  # whatever order storage returns


def test_keys_created_at_the_same_instant_are_ordered_by_kid_so_replicas_agree() -> None:
    a, b = key("aaa", age=HOUR), key("bbb", age=HOUR)
    assert choose_active([a, b]) == choose_active([b, a]) == b


def test_no_active_key_when_every_key_is_scheduled_or_there_are_none() -> None:
    assert choose_active([]) is None
    assert choose_active([key("k", age=HOUR, retired_in=HOUR)]) is None


@pytest.mark.parametrize(
    ("retired_in", "visible", "state"),
    [
        (None, True, KeyState.RETIRING),  # unretired but not the active one
        (HOUR, True, KeyState.RETIRING),
        (timedelta(0), False, KeyState.RETIRED),  # leaves exactly at retired_at
        (-HOUR, False, KeyState.RETIRED),
    ],
)
def test_a_key_is_published_until_its_retirement_time(
    retired_in: timedelta | None, visible: bool, state: KeyState
) -> None:
    k = key("k", age=HOUR, retired_in=retired_in)
    assert published(k, NOW) is visible
    assert view_of(k, active_kid="other", now=NOW).state is state


def test_the_active_key_views_as_active() -> None:
    view = view_of(key("k", age=HOUR), active_kid="k", now=NOW)
    assert (view.kid, view.state, view.retired_at) == ("k", KeyState.ACTIVE, None)


def test_rotation_schedules_unretired_keys_and_never_lengthens_a_retiring_one() -> None:
    keys = [
        key("active", age=HOUR),
        key("soon", age=2 * HOUR, retired_in=timedelta(minutes=10)),
        key("late", age=3 * HOUR, retired_in=5 * HOUR),
        key("gone", age=9 * HOUR, retired_in=-HOUR),
    ]
    ends = rotation_retirements(keys, now=NOW, overlap=HOUR)
    # "soon" keeps its earlier date; "late" is brought forward; "gone" is left alone.
    assert ends == {"active": NOW + HOUR, "late": NOW + HOUR}


def test_rotation_with_zero_overlap_takes_every_old_key_out_now() -> None:
    keys = [key("active", age=HOUR), key("retiring", age=2 * HOUR, retired_in=HOUR)]
    assert rotation_retirements(keys, now=NOW, overlap=timedelta(0)) == {
        "active": NOW,
        "retiring": NOW,
    }


def test_a_key_is_due_at_its_maximum_age_and_a_missing_key_always_is() -> None:
    max_age = timedelta(days=30)
    assert not is_due(key("k", age=max_age - timedelta(seconds=1)), now=NOW, max_age=max_age)
    assert is_due(key("k", age=max_age), now=NOW, max_age=max_age)
    assert is_due(None, now=NOW, max_age=max_age)


@pytest.mark.parametrize("overlap", [timedelta(seconds=-1), timedelta(days=7, seconds=1)])
def test_overlap_outside_zero_to_seven_days_is_refused(overlap: timedelta) -> None:
    with pytest.raises(InvalidOverlap, match="between 0 and 7 days"):
        check_overlap(overlap)
