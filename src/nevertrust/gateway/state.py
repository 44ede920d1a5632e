"""Hot-path state: one immutable snapshot swapped whole, and a session cache.

Both are invalidated by change events (pushed by the change feed), so a request never
waits on the database unless it carries a session this process has not seen yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.domain import AccessRule, App, Principal
from nevertrust.identity.models import SessionRecord
from nevertrust.pdp import PolicyDocument, PolicySnapshot, compile_snapshot

__all__ = ["ActivityLog", "GatewaySnapshot", "SessionCache", "SnapshotHolder"]

_log = logging.getLogger("nevertrust.gateway")


@dataclass(frozen=True, slots=True)
class GatewaySnapshot:
    version: int
    policy: PolicySnapshot
    principals: Mapping[int, Principal]


# (apps, rules, principals) or (apps, rules, principals, active policy document or None)
SnapshotSource = Callable[
    [],
    tuple[Iterable[App], Iterable[AccessRule], Iterable[Principal]]
    | tuple[Iterable[App], Iterable[AccessRule], Iterable[Principal], PolicyDocument | None],
]


class SnapshotHolder:
    """Holds the current snapshot; a failed rebuild keeps the previous one (and logs).

    Rebuilds are serialised: events arrive on the event loop (feed, Redis) and on worker
    threads (local commits), and two overlapping rebuilds could otherwise finish in the
    wrong order and leave the older state in place.
    """

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._version = 0
        self.snapshot = GatewaySnapshot(
            version=0,
            policy=compile_snapshot(version=0, apps=(), rules=()),
            principals=MappingProxyType({}),
        )
        self.stale = True

    def rebuild(self) -> bool:
        with self._lock:
            return self._rebuild()

    def _rebuild(self) -> bool:
        try:
            apps, rules, principals, *rest = self._source()
            policies = rest[0] if rest else None
            version = self._version + 1
            snapshot = GatewaySnapshot(
                version=version,
                policy=compile_snapshot(version=version, apps=apps, rules=rules, policies=policies),
                principals=MappingProxyType({p.user_id: p for p in principals}),
            )
        except Exception:  # noqa: BLE001 - keep serving the last good snapshot
            _log.exception("snapshot_rebuild_failed")
            self.stale = True
            return False
        self._version = version
        self.snapshot = snapshot
        self.stale = False
        return True

    def on_event(self, event: ChangeEvent) -> None:
        if event.topic in (
            Topic.USER,
            Topic.GROUP,
            Topic.APP,
            Topic.RULE,
            Topic.CONFIG,
            Topic.POLICY,
            Topic.EVERYTHING,
        ):
            self.rebuild()


@dataclass(frozen=True, slots=True)
class CachedSession:
    id_hash: str
    user_id: int
    parent_hash: str | None
    app_name: str | None
    auth_methods: frozenset[str]
    auth_time: datetime
    expires_at: datetime
    revoked: bool
    last_seen: datetime
    device_id: str | None = None  # bound by a device's platform passkey (browser sessions)

    def usable(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at


_MISSING = object()


class SessionCache:
    """Session hash -> cached session (or None for 'no such session'), bounded in size.

    ``generation`` moves on every invalidation. A reader that looked a session up in
    storage passes the generation it saw before the read; if an invalidation arrived
    meanwhile, the answer is used once but not cached, since it may predate the change.
    """

    def __init__(self, *, max_entries: int) -> None:
        self._entries: dict[str, CachedSession | None] = {}
        self._max = max_entries
        self.generation = 0

    def get(self, id_hash: str) -> CachedSession | None | object:
        """The cached value, or ``MISSING`` when this process has not looked it up yet."""
        return self._entries.get(id_hash, _MISSING)

    MISSING = _MISSING

    def put(
        self, id_hash: str, record: SessionRecord | None, *, generation: int | None = None
    ) -> CachedSession | None:
        value = None
        if record is not None:
            value = CachedSession(
                id_hash=record.id_hash,
                user_id=record.user_id,
                parent_hash=record.parent_hash,
                app_name=record.app_name,
                auth_methods=frozenset(record.auth_methods),
                auth_time=record.auth_time,
                expires_at=record.expires_at,
                revoked=record.revoked_at is not None,
                last_seen=record.last_activity,
                device_id=record.device_id,
            )
        if generation is not None and generation != self.generation:
            return value
        if len(self._entries) >= self._max:
            # Drop the oldest insertion; dicts keep insertion order.
            self._entries.pop(next(iter(self._entries)))
        self._entries[id_hash] = value
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def on_event(self, event: ChangeEvent) -> None:
        if event.topic in (Topic.SESSION, Topic.USER_SESSIONS, Topic.USER, Topic.EVERYTHING):
            self.generation += 1
        if event.topic is Topic.SESSION:
            key = event.key
            self._drop(lambda s: s.id_hash == key or s.parent_hash == key)
        elif event.topic in (Topic.USER_SESSIONS, Topic.USER):
            user_id = int(event.key) if event.key.isdigit() else -1
            self._drop(lambda s: s.user_id == user_id)
        elif event.topic is Topic.EVERYTHING:
            self._entries.clear()

    def _drop(self, match: Callable[[CachedSession], bool]) -> None:
        doomed = [k for k, v in self._entries.items() if v is not None and match(v)]
        for key in doomed:
            self._entries.pop(key, None)


class ActivityLog:
    """Last request time per session, kept in memory and written in batches.

    The idle timeout needs to know when a session was last used, but a database write
    per request would put storage on the hot path. Each request sets one dict entry; a
    background task hands the accumulated entries (and their parent portal sessions, so
    using an app keeps the sign-in alive too) to storage every few seconds.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str | None, datetime]] = {}

    def seen(self, session: CachedSession, now: datetime) -> None:
        self._seen[session.id_hash] = (session.parent_hash, now)

    def last(self, session: CachedSession) -> datetime:
        entry = self._seen.get(session.id_hash)
        return session.last_seen if entry is None or entry[1] < session.last_seen else entry[1]

    def drain(self) -> list[tuple[str, datetime]]:
        """Entries to write, parents included; the log starts afresh."""
        seen, self._seen = self._seen, {}
        out: dict[str, datetime] = {}
        for id_hash, (parent, at) in seen.items():
            out[id_hash] = at
            if parent is not None and out.get(parent, at) <= at:
                out[parent] = at
        return list(out.items())
