from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from nevertrust.bus import ChangeEvent, MemoryBus, Topic
from nevertrust.domain import AccessRequest, AccessRule, App, Principal
from nevertrust.gateway import SessionCache, SnapshotHolder
from nevertrust.gateway.state import CachedSession
from nevertrust.identity.models import SessionKind, SessionRecord
from nevertrust.pdp import decide

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def session(
    id_hash: str,
    *,
    user_id: int = 1,
    parent_hash: str | None = None,
    revoked: bool = False,
) -> SessionRecord:
    return SessionRecord(
        id_hash=id_hash,
        user_id=user_id,
        kind=SessionKind.APP if parent_hash else SessionKind.PORTAL,
        parent_hash=parent_hash,
        app_name="whoami" if parent_hash else None,
        auth_methods=("pwd",),
        auth_time=NOW,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        revoked_at=NOW if revoked else None,
        source_ip="127.0.0.1",
        user_agent="test",
    )


def test_unknown_session_is_missing() -> None:
    cache = SessionCache(max_entries=10)
    assert cache.get("nope") is SessionCache.MISSING
    assert len(cache) == 0


def test_put_then_get_returns_cached_session() -> None:
    cache = SessionCache(max_entries=10)
    stored = cache.put("h1", session("h1", user_id=7))
    got = cache.get("h1")
    assert got == stored
    assert isinstance(got, CachedSession)
    assert got.user_id == 7
    assert got.auth_methods == frozenset({"pwd"})
    assert isinstance(got.auth_methods, frozenset)  # the PDP tests methods by set membership
    assert got.usable(NOW)


def test_negative_lookup_is_cached_as_none() -> None:
    cache = SessionCache(max_entries=10)
    assert cache.put("ghost", None) is None
    assert cache.get("ghost") is None
    assert len(cache) == 1


def test_cached_session_is_unusable_when_revoked_or_expired() -> None:
    cache = SessionCache(max_entries=10)
    revoked = cache.put("r", session("r", revoked=True))
    live = cache.put("l", session("l"))
    assert revoked is not None and live is not None
    assert revoked.revoked and not revoked.usable(NOW)
    assert not live.usable(NOW + timedelta(hours=1))
    assert live.usable(NOW + timedelta(hours=1) - timedelta(microseconds=1))


def test_cache_is_bounded_and_evicts_oldest_first() -> None:
    cache = SessionCache(max_entries=3)
    for i in range(5):
        cache.put(f"h{i}", session(f"h{i}"))
    assert len(cache) == 3
    assert cache.get("h0") is SessionCache.MISSING
    assert cache.get("h1") is SessionCache.MISSING
    assert all(cache.get(f"h{i}") is not SessionCache.MISSING for i in (2, 3, 4))


def test_updating_an_entry_in_a_full_cache_keeps_the_bound() -> None:
    cache = SessionCache(max_entries=2)
    cache.put("a", session("a"))
    cache.put("b", session("b"))
    cache.put("b", session("b", revoked=True))
    assert len(cache) <= 2
    updated = cache.get("b")
    assert isinstance(updated, CachedSession) and updated.revoked


def _filled() -> SessionCache:
    cache = SessionCache(max_entries=100)
    cache.put("portal-a", session("portal-a", user_id=1))
    cache.put("app-a1", session("app-a1", user_id=1, parent_hash="portal-a"))
    cache.put("app-a2", session("app-a2", user_id=1, parent_hash="portal-a"))
    cache.put("portal-b", session("portal-b", user_id=1))
    cache.put("portal-c", session("portal-c", user_id=2))
    cache.put("app-c1", session("app-c1", user_id=2, parent_hash="portal-c"))
    cache.put("unknown", None)
    return cache


def _present(cache: SessionCache) -> set[str]:
    keys = ["portal-a", "app-a1", "app-a2", "portal-b", "portal-c", "app-c1", "unknown"]
    return {k for k in keys if cache.get(k) is not SessionCache.MISSING}


def test_session_event_drops_the_session_and_its_app_sessions() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.SESSION, "portal-a"))
    assert _present(cache) == {"portal-b", "portal-c", "app-c1", "unknown"}


def test_session_event_for_a_child_drops_only_that_child() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.SESSION, "app-a1"))
    assert _present(cache) == {"portal-a", "app-a2", "portal-b", "portal-c", "app-c1", "unknown"}


def test_user_sessions_event_drops_every_session_of_that_user() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.USER_SESSIONS, "1"))
    assert _present(cache) == {"portal-c", "app-c1", "unknown"}


def test_user_event_drops_every_session_of_that_user() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.USER, "2"))
    assert _present(cache) == {"portal-a", "app-a1", "app-a2", "portal-b", "unknown"}


def test_user_sessions_event_with_a_non_numeric_key_drops_nothing() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.USER_SESSIONS, "alice"))
    assert len(_present(cache)) == 7


def test_everything_event_clears_the_cache() -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(Topic.EVERYTHING))
    assert len(cache) == 0
    assert _present(cache) == set()


@pytest.mark.parametrize("topic", [Topic.GROUP, Topic.APP, Topic.RULE, Topic.CONFIG])
def test_unrelated_events_keep_sessions(topic: Topic) -> None:
    cache = _filled()
    cache.on_event(ChangeEvent(topic, "1"))
    assert len(_present(cache)) == 7


def test_cache_follows_events_published_on_the_bus() -> None:
    bus = MemoryBus()
    cache = _filled()
    bus.subscribe(cache.on_event)
    bus.publish(ChangeEvent(Topic.SESSION, "portal-c"))
    assert "portal-c" not in _present(cache) and "app-c1" not in _present(cache)


ALICE = Principal(user_id=1, name="alice", groups=frozenset({"eng"}))


class World:
    """A real, changeable source of apps, rules and principals."""

    def __init__(self) -> None:
        self.apps = [App(name="whoami", upstream="http://127.0.0.1:9001")]
        self.rules = [AccessRule(rule_id="r1", app="whoami", group="eng")]
        self.principals = [ALICE]
        self.broken = False
        self.calls = 0

    def __call__(self) -> tuple[list[App], list[AccessRule], list[Principal]]:
        self.calls += 1
        if self.broken:
            raise RuntimeError("database went away")
        return list(self.apps), list(self.rules), list(self.principals)


def test_new_holder_is_empty_and_stale_until_built() -> None:
    holder = SnapshotHolder(World())
    assert holder.stale
    assert holder.snapshot.version == 0
    assert dict(holder.snapshot.principals) == {}
    assert holder.snapshot.policy.app("whoami") is None


def test_rebuild_builds_a_snapshot_the_pdp_can_use() -> None:
    holder = SnapshotHolder(World())
    assert holder.rebuild() is True
    assert not holder.stale
    snap = holder.snapshot
    assert snap.version == 1 and snap.policy.version == 1
    assert snap.principals[1] == ALICE
    assert decide(AccessRequest(principal=ALICE, app="whoami"), snap.policy, NOW).allowed


def test_rebuild_keeps_the_old_snapshot_when_the_source_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World()
    holder = SnapshotHolder(world)
    holder.rebuild()
    good = holder.snapshot
    world.broken = True
    assert holder.rebuild() is False
    assert holder.snapshot is good
    assert holder.stale
    assert any(r.message == "snapshot_rebuild_failed" for r in caplog.records)
    # Still answering from the last good snapshot.
    assert decide(AccessRequest(principal=ALICE, app="whoami"), holder.snapshot.policy, NOW).allowed


def test_recovery_after_a_failed_rebuild_continues_the_version_sequence() -> None:
    world = World()
    holder = SnapshotHolder(world)
    holder.rebuild()
    world.broken = True
    holder.rebuild()
    world.broken = False
    assert holder.rebuild() is True
    assert holder.snapshot.version == 2
    assert not holder.stale


def test_rule_change_event_swaps_in_a_new_snapshot() -> None:
    world = World()
    holder = SnapshotHolder(world)
    bus = MemoryBus()
    bus.subscribe(holder.on_event)
    holder.rebuild()
    before = holder.snapshot
    world.rules = []
    bus.publish(ChangeEvent(Topic.RULE, "whoami"))
    assert holder.snapshot is not before
    assert before.policy.apps["whoami"].enforced.allow  # the old snapshot is untouched
    request = AccessRequest(principal=ALICE, app="whoami")
    assert not decide(request, holder.snapshot.policy, NOW).allowed


def test_disabling_a_user_reaches_the_snapshot_through_a_user_event() -> None:
    world = World()
    holder = SnapshotHolder(world)
    holder.rebuild()
    world.principals = [dataclasses.replace(ALICE, enabled=False)]
    holder.on_event(ChangeEvent(Topic.USER, "1"))
    assert holder.snapshot.principals[1].enabled is False


@pytest.mark.parametrize(
    ("topic", "rebuilds"),
    [
        (Topic.USER, True),
        (Topic.GROUP, True),
        (Topic.APP, True),
        (Topic.RULE, True),
        (Topic.CONFIG, True),
        (Topic.EVERYTHING, True),
        (Topic.SESSION, False),
        (Topic.USER_SESSIONS, False),
    ],
)
def test_holder_rebuilds_only_on_events_that_change_decisions(topic: Topic, rebuilds: bool) -> None:
    world = World()
    holder = SnapshotHolder(world)
    holder.on_event(ChangeEvent(topic, "1"))
    assert (world.calls == 1) is rebuilds
    assert (holder.snapshot.version == 1) is rebuilds


def test_a_lookup_that_raced_an_invalidation_is_answered_but_not_cached() -> None:
    cache = SessionCache(max_entries=10)
    before = cache.generation
    # ... the gateway reads the session from storage; meanwhile it is revoked ...
    cache.on_event(ChangeEvent(Topic.USER_SESSIONS, "1"))
    value = cache.put("a", session("a"), generation=before)
    assert value is not None  # this one request gets the answer it read
    assert cache.get("a") is SessionCache.MISSING  # the next one reads storage again

    now = cache.generation
    cache.put("a", session("a", revoked=True), generation=now)
    assert cache.get("a") is not SessionCache.MISSING


def test_concurrent_rebuilds_never_leave_an_older_state_in_place() -> None:
    """A slow rebuild that read old state must not finish after one that read newer."""
    import threading

    world = World()
    entered, release = threading.Event(), threading.Event()
    original = world.__call__

    class SlowFirstRead:
        def __init__(self) -> None:
            self.first = True

        def __call__(self) -> tuple[list[App], list[AccessRule], list[Principal]]:
            result = original()
            if self.first:
                self.first = False
                entered.set()
                release.wait(5)  # hold the old state while a newer change happens
            return result

    holder = SnapshotHolder(SlowFirstRead())
    slow = threading.Thread(target=holder.rebuild)
    slow.start()
    assert entered.wait(5)
    world.principals = []  # alice leaves; the change event triggers a second rebuild
    second = threading.Thread(target=holder.rebuild)
    second.start()
    release.set()
    slow.join(5)
    second.join(5)
    assert dict(holder.snapshot.principals) == {}
