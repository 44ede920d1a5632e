"""Use cases for signing in and out, and for handing a login to an app host.

Session ids and one-time codes are 256-bit random tokens; the database keeps only their
SHA-256, so a copy of the database does not let anyone ride a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import constant_time_equal, hash_token, new_token
from nevertrust.identity.errors import InvalidCredentials, InvalidHandoff, UnknownUser
from nevertrust.identity.models import HandoffRecord, SessionKind, SessionRecord, UserRecord
from nevertrust.identity.passwords import Passwords

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["AuthService", "IssuedSession"]


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: the token goes to the browser once; only the record is kept."""

    token: str
    record: SessionRecord
    user: UserRecord


class AuthService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        session_lifetime: timedelta,
        handoff_ttl: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._session_lifetime = session_lifetime
        self._handoff_ttl = handoff_ttl

    def _audit(self, uow: UnitOfWork, entry: AuditEntry) -> None:
        uow.audit.append([entry])

    def login(
        self, username: str, password: str, *, source_ip: str, user_agent: str
    ) -> IssuedSession:
        """Check a password and open a new portal session (always a new id: no fixation).

        Unknown users, users without a password, disabled users and wrong passwords all
        cost one argon2 verification and raise the same ``InvalidCredentials``.
        """
        now = self._clock.now()
        with self._uow.read() as uow:
            user = uow.users.get_by_name(username) if len(username) <= 64 else None
        ok = self._passwords.verify(user.password_hash if user else None, password)
        reason = ""
        if user is None:
            reason = "unknown-user"
        elif not ok:
            reason = "bad-password"
        elif not user.enabled:
            reason = "user-disabled"
        with self._uow.write() as uow:
            if reason:
                self._audit(
                    uow,
                    AuditEntry(
                        ts=now,
                        actor=f"user:{username[:64]}",
                        action=Action.LOGIN_FAILED,
                        outcome=Outcome.FAILURE,
                        target="portal",
                        source=source_ip,
                        reason=reason,
                    ),
                )
                failed = True
            else:
                failed = False
                assert user is not None  # noqa: S101 - narrowed by reason == ""
                token = new_token()
                record = SessionRecord(
                    id_hash=hash_token(token),
                    user_id=user.id,
                    kind=SessionKind.PORTAL,
                    parent_hash=None,
                    app_name=None,
                    auth_methods=("pwd",),
                    auth_time=now,
                    created_at=now,
                    expires_at=now + self._session_lifetime,
                    revoked_at=None,
                    source_ip=source_ip,
                    user_agent=user_agent,
                )
                uow.sessions.insert(record)
                if self._passwords.needs_rehash(user.password_hash or ""):
                    uow.users.set_password_hash(user.id, self._passwords.hash(password), now=now)
                self._audit(
                    uow,
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name}",
                        action=Action.LOGIN_SUCCEEDED,
                        outcome=Outcome.SUCCESS,
                        target="portal",
                        source=source_ip,
                        details={"session": record.id_hash[:12], "methods": ["pwd"]},
                    ),
                )
        # Raised outside the transaction so the failure record commits.
        if failed:
            raise InvalidCredentials("wrong user name or password")
        assert user is not None  # noqa: S101
        return IssuedSession(token=token, record=record, user=user)

    def portal_session(self, token: str) -> tuple[SessionRecord, UserRecord] | None:
        """The active portal session for a cookie value, with its (enabled) user."""
        if not token or len(token) > 100:
            return None
        with self._uow.read() as uow:
            record = uow.sessions.get(hash_token(token))
            if (
                record is None
                or record.kind is not SessionKind.PORTAL
                or not record.active(self._clock.now())
            ):
                return None
            user = uow.users.get_by_id(record.user_id)
        if user is None or not user.enabled:
            return None
        return record, user

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

    # Hand-off of a portal login to an app host (Pomerium-style callback).

    def issue_handoff(
        self, session: SessionRecord, *, app_name: str, target: str, state: str
    ) -> str:
        """A one-time code the app host exchanges for its own host-only session cookie."""
        code = new_token()
        with self._uow.write() as uow:
            uow.handoffs.insert(
                HandoffRecord(
                    code_hash=hash_token(code),
                    session_hash=session.id_hash,
                    app_name=app_name,
                    target=target,
                    state_hash=hash_token(state),
                    expires_at=self._clock.now() + self._handoff_ttl,
                )
            )
        return code

    def redeem_handoff(
        self, code: str, *, app_name: str, state: str, source_ip: str, user_agent: str
    ) -> tuple[str, SessionRecord, str]:
        """Exchange a code for an app session: (cookie token, record, original target).

        The code must be unused, unexpired, minted for this app, and presented by the
        browser that started the flow (the state cookie), or the exchange fails.
        """
        now = self._clock.now()
        token = new_token()
        with self._uow.write() as uow:
            handoff = uow.handoffs.redeem(hash_token(code), now=now) if code else None
            if handoff is None:
                raise InvalidHandoff("sign-in link expired or already used")
            if handoff.app_name != app_name or not constant_time_equal(
                handoff.state_hash, hash_token(state)
            ):
                raise InvalidHandoff("sign-in link does not belong to this browser or app")
            parent = uow.sessions.get(handoff.session_hash)
            if parent is None or not parent.active(now):
                raise InvalidHandoff("the portal session has ended")
            record = SessionRecord(
                id_hash=hash_token(token),
                user_id=parent.user_id,
                kind=SessionKind.APP,
                parent_hash=parent.id_hash,
                app_name=app_name,
                auth_methods=parent.auth_methods,
                auth_time=parent.auth_time,
                created_at=now,
                expires_at=parent.expires_at,
                revoked_at=None,
                source_ip=source_ip,
                user_agent=user_agent,
            )
            uow.sessions.insert(record)
            user = uow.users.get_by_id(parent.user_id)
            self._audit(
                uow,
                AuditEntry(
                    ts=now,
                    actor=f"user:{user.name if user else parent.user_id}",
                    action=Action.APP_SESSION_ISSUED,
                    outcome=Outcome.SUCCESS,
                    target=f"app:{app_name}",
                    source=source_ip,
                    details={"parent": parent.id_hash[:12]},
                ),
            )
        return token, record, handoff.target
