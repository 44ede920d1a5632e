"""Session activity: kept in memory per request, written in batches with parents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from nevertrust.gateway import ActivityLog, SessionCache
from nevertrust.identity.models import SessionKind, SessionRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def cached(id_hash: str, parent: str | None = "portal", *, last_seen: datetime = NOW):
    record = SessionRecord(
        id_hash=id_hash,
        user_id=1,
        kind=SessionKind.APP,
        parent_hash=parent,
        app_name="whoami",
        auth_methods=("pwd",),
        auth_time=NOW,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        revoked_at=None,
        source_ip="",
        user_agent="",
        last_seen_at=last_seen,
    )
    value = SessionCache(max_entries=100).put(id_hash, record)
    assert value is not None
    return value


def test_last_activity_is_the_newer_of_storage_and_this_process() -> None:
    log = ActivityLog()
    s = cached("a", last_seen=NOW)
    assert log.last(s) == NOW
    log.seen(s, NOW + timedelta(minutes=3))
    assert log.last(s) == NOW + timedelta(minutes=3)
    fresher = cached("a", last_seen=NOW + timedelta(minutes=9))  # another replica wrote
    assert log.last(fresher) == NOW + timedelta(minutes=9)


def test_drain_writes_each_session_once_and_keeps_the_parent_alive_too() -> None:
    log = ActivityLog()
    log.seen(cached("a"), NOW + timedelta(seconds=1))
    log.seen(cached("a"), NOW + timedelta(seconds=5))
    log.seen(cached("b"), NOW + timedelta(seconds=3))
    assert dict(log.drain()) == {
        "a": NOW + timedelta(seconds=5),
        "b": NOW + timedelta(seconds=3),
        "portal": NOW + timedelta(seconds=5),  # the newest child's time
    }
    assert log.drain() == []


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 10_000)), max_size=50))
def test_drained_times_are_the_latest_seen_per_session(events: list[tuple[str, int]]) -> None:
    log = ActivityLog()
    latest: dict[str, datetime] = {}
    for name, offset in events:
        at = NOW + timedelta(seconds=offset)
        # Requests of one session arrive in time order on one process.
        at = max(at, latest.get(name, at))
        latest[name] = at
        log.seen(cached(name, parent=None), at)
    assert dict(log.drain()) == latest
