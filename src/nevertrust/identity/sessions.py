"""What happens to a session after sign-in: lookups, idle and absolute timeouts, activity,
sign-out and revocation (one session, or every session of a user), and housekeeping.

Revoking a portal session revokes the app sessions handed out from it in the same
statement, and announces a change event so every gateway replica drops them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token
from nevertrust.identity.errors import UnknownUser
from nevertrust.identity.models import SessionKind, SessionRecord, UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["SessionService"]

# Session activity is written at most this often per session (idle timeout bookkeeping).
_TOUCH_EVERY = timedelta(seconds=60)


class SessionService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, idle_timeout: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._idle_timeout = idle_timeout

    def _audit(self, uow: UnitOfWork, entry: AuditEntry) -> None:
        uow.audit.append([entry])

    def portal_session(self, token: str) -> tuple[SessionRecord, UserRecord] | None:
        """The active portal session for a cookie value, with its (enabled) user.

        A session unused for longer than the idle timeout has ended, even before its
        absolute expiry. Activity is recorded at most once a minute per session.
        """
        return self.session_of_kind(token, SessionKind.PORTAL)

    def session_of_kind(
        self, token: str, kind: SessionKind
    ) -> tuple[SessionRecord, UserRecord] | None:
        if not token or len(token) > 100:
            return None
        now = self._clock.now()
        with self._uow.read() as uow:
            record = uow.sessions.get(hash_token(token))
            if record is None or record.kind is not kind or not self.alive(record, now):
                return None
            user = uow.users.get_by_id(record.user_id)
        if user is None or not user.enabled:
            return None
        if now - record.last_activity >= _TOUCH_EVERY:
            self.touch([(record.id_hash, now)])
        return record, user

    def alive(self, record: SessionRecord, now: datetime) -> bool:
        """Not revoked, before its absolute expiry, and used within the idle timeout."""
        return record.active(now) and now - record.last_activity < self._idle_timeout

    @property
    def idle_timeout(self) -> timedelta:
        return self._idle_timeout

    def touch(self, seen: Sequence[tuple[str, datetime]]) -> None:
        """Record session activity (gateways batch theirs and call this periodically)."""
        if seen:
            with self._uow.write() as uow:
                uow.sessions.touch(seen)

    def purge_ended(self, *, kept_for: timedelta = timedelta(days=30)) -> int:
        """Delete session rows that ended (expired or revoked) more than ``kept_for`` ago.

        Ended sessions grant nothing; their story stays in the audit log.
        """
        with self._uow.write() as uow:
            return uow.sessions.purge_expired(before=self._clock.now() - kept_for)

    def session_by_hash(self, id_hash: str) -> SessionRecord | None:
        """Any session by hash, active or not; used by gateway caches on a miss."""
        with self._uow.read() as uow:
            return uow.sessions.get(id_hash)

    def logout(self, session: SessionRecord, *, actor: str, source_ip: str = "") -> None:
        """End a portal session and every app session handed out from it."""
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.sessions.revoke(session.id_hash, now=now)
            self._audit(
                uow,
                AuditEntry(
                    ts=now,
                    actor=actor,
                    action=Action.LOGOUT,
                    outcome=Outcome.SUCCESS,
                    target=f"session:{session.id_hash[:12]}",
                    source=source_ip,
                ),
            )
            uow.changes.record(ChangeEvent(Topic.SESSION, session.id_hash), now=now)

    def revoke_session(
        self, username: str, id_prefix: str, *, actor: str, source_ip: str = ""
    ) -> bool:
        """End one of a user's portal sessions, named by the first characters of its hash."""
        if len(id_prefix) < 8:
            return False
        for record in self.list_sessions(username=username):
            if record.id_hash.startswith(id_prefix):
                self.logout(record, actor=actor, source_ip=source_ip)
                return True
        return False

    def revoke_user_sessions(self, username: str, *, actor: str, source_ip: str = "") -> int:
        now = self._clock.now()
        with self._uow.write() as uow:
            user = uow.users.get_by_name(username)
            if user is None:
                raise UnknownUser(f"no user named {username!r}", name=username)
            count = uow.sessions.revoke_user(user.id, now=now)
            self._audit(
                uow,
                AuditEntry(
                    ts=now,
                    actor=actor,
                    action=Action.SESSION_REVOKED,
                    outcome=Outcome.SUCCESS,
                    target=f"user:{username}",
                    source=source_ip,
                    details={"sessions": count},
                ),
            )
            uow.changes.record(ChangeEvent(Topic.USER_SESSIONS, str(user.id)), now=now)
        return count

    def list_sessions(self, *, username: str | None = None) -> Sequence[SessionRecord]:
        with self._uow.read() as uow:
            user_id = None
            if username is not None:
                user = uow.users.get_by_name(username)
                if user is None:
                    raise UnknownUser(f"no user named {username!r}", name=username)
                user_id = user.id
            return uow.sessions.list_active(now=self._clock.now(), user_id=user_id)
