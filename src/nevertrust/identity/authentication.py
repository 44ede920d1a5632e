"""Signing in: password, second factor, passkey, step-up. Each step that grants more
opens a session under a new id (no fixation, no id that gains rights).

Session ids are 256-bit random tokens; the database keeps only their SHA-256, so a copy
of the database does not let anyone ride a session. What happens to sessions afterwards
(idle timeouts, sign-out, revocation) lives in ``sessions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token, new_token
from nevertrust.identity.device_cookies import DeviceCookies
from nevertrust.identity.errors import InvalidCredentials
from nevertrust.identity.models import (
    SessionKind,
    SessionRecord,
    UserKind,
    UserRecord,
)
from nevertrust.identity.passwords import Passwords
from nevertrust.identity.sessions import SessionService

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["AuthService", "IssuedSession", "LoginRegulator"]

# Sign-in methods a session can record (RFC 8176 names where one exists).
_METHODS = frozenset({"pwd", "otp", "webauthn", "hwk", "recovery", "mfa"})
# What a verified factor adds to a session's methods. A passkey is proof of possession of
# a hardware-backed key (RFC 8176 "hwk"); any second factor makes the sign-in "mfa".
_IMPLIED = {"webauthn": ("webauthn", "hwk", "mfa"), "otp": ("otp", "mfa")}


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: the token goes to the browser once; only the record is kept."""

    token: str
    record: SessionRecord
    user: UserRecord
    # For a full sign-in: a fresh device cookie value for this browser (device_cookies.py).
    device_cookie: str = ""


class LoginRegulator(Protocol):
    """Brute-force regulation, as sign-in needs it (``nevertrust.identity.regulation``)."""

    def banned(self, username: str, source_ip: str, *, device: str | None = None) -> bool: ...

    def record_failure(
        self, username: str, source_ip: str, *, device: str | None = None
    ) -> None: ...

    def record_success(
        self, username: str, source_ip: str, *, device: str | None = None
    ) -> None: ...


class AuthService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        regulator: LoginRegulator,
        devices: DeviceCookies,
        sessions: SessionService,
        session_lifetime: timedelta,
        pending_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._regulator = regulator
        self._devices = devices
        self._sessions = sessions
        self._session_lifetime = session_lifetime
        self._pending_ttl = pending_ttl

    def _audit(self, uow: UnitOfWork, entry: AuditEntry) -> None:
        uow.audit.append([entry])

    def login(
        self,
        username: str,
        password: str,
        *,
        source_ip: str,
        user_agent: str,
        device_cookie: str = "",
    ) -> IssuedSession:
        """Check a password and open a session (always a new id: no fixation).

        A user with a second factor gets a short-lived PENDING session that grants nothing
        until ``complete_second_factor``. Unknown users, users without a password, disabled
        users, service accounts, banned names or addresses and wrong passwords all cost one
        argon2 verification and raise the same ``InvalidCredentials``.

        A browser holding a valid device cookie for this name is regulated per device, not
        per name, so other people's failed guesses cannot lock its owner out.
        """
        now = self._clock.now()
        username = username[:64]
        device = self._devices.device_for(device_cookie, username)
        banned = self._regulator.banned(username, source_ip, device=device)
        with self._uow.read() as uow:
            user = uow.users.get_by_name(username)
            factors = self._factors(uow, user.id) if user is not None else frozenset()
        ok = self._passwords.verify(user.password_hash if user else None, password)
        reason = ""
        if banned:
            reason = "banned"
        elif user is None:
            reason = "unknown-user"
        elif not ok:
            reason = "bad-password"
        elif not user.enabled:
            reason = "user-disabled"
        elif user.kind is UserKind.SERVICE:
            reason = "service-account"
        if reason:
            if reason != "banned":
                self._regulator.record_failure(username, source_ip, device=device)
            with self._uow.write() as uow:
                self._audit(uow, self._failure(username, source_ip, reason, now))
            raise InvalidCredentials("wrong user name or password")
        assert user is not None  # noqa: S101 - narrowed by reason == ""
        self._regulator.record_success(username, source_ip, device=device)
        pending = bool(factors)
        token = new_token()
        record = self._new_session(
            token,
            user.id,
            kind=SessionKind.PENDING if pending else SessionKind.PORTAL,
            methods=("pwd",),
            now=now,
            source_ip=source_ip,
            user_agent=user_agent,
        )
        with self._uow.write() as uow:
            uow.sessions.insert(record)
            if self._passwords.needs_rehash(user.password_hash or ""):
                uow.users.set_password_hash(user.id, self._passwords.hash(password), now=now)
            if pending:
                self._audit(
                    uow,
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name}",
                        action=Action.LOGIN_SECOND_FACTOR_REQUIRED,
                        outcome=Outcome.SUCCESS,
                        target="portal",
                        source=source_ip,
                        details={"factors": sorted(factors)},
                    ),
                )
            else:
                self._signed_in(uow, user, record, now)
        if pending:
            return IssuedSession(token=token, record=record, user=user)
        return IssuedSession(token, record, user, device_cookie=self._devices.issue(user.name))

    def _failure(self, username: str, source_ip: str, reason: str, now: datetime) -> AuditEntry:
        return AuditEntry(
            ts=now,
            actor=f"user:{username}",
            action=Action.LOGIN_FAILED,
            outcome=Outcome.FAILURE,
            target="portal",
            source=source_ip,
            reason=reason,
        )

    def _new_session(
        self,
        token: str,
        user_id: int,
        *,
        kind: SessionKind,
        methods: tuple[str, ...],
        now: datetime,
        source_ip: str,
        user_agent: str,
        device_id: str | None = None,
    ) -> SessionRecord:
        lifetime = self._pending_ttl if kind is SessionKind.PENDING else self._session_lifetime
        return SessionRecord(
            id_hash=hash_token(token),
            user_id=user_id,
            kind=kind,
            parent_hash=None,
            app_name=None,
            auth_methods=methods,
            auth_time=now,
            created_at=now,
            expires_at=now + lifetime,
            revoked_at=None,
            source_ip=source_ip,
            user_agent=user_agent,
            last_seen_at=now,
            device_id=device_id,
        )

    def _signed_in(
        self, uow: UnitOfWork, user: UserRecord, record: SessionRecord, now: datetime
    ) -> None:
        uow.users.set_last_login(user.id, now=now)
        self._audit(
            uow,
            AuditEntry(
                ts=now,
                actor=f"user:{user.name}",
                action=Action.LOGIN_SUCCEEDED,
                outcome=Outcome.SUCCESS,
                target="portal",
                source=record.source_ip,
                details={"session": record.id_hash[:12], "methods": list(record.auth_methods)},
            ),
        )

    @staticmethod
    def _factors(uow: UnitOfWork, user_id: int) -> frozenset[str]:
        found = set()
        totp = uow.totp.get(user_id)
        if totp is not None and totp.confirmed_at is not None:
            found.add("otp")
        if uow.webauthn.list_for_user(user_id):
            found.add("webauthn")
        return frozenset(found)

    def second_factors(self, user_id: int) -> frozenset[str]:
        """The second factors a user can sign in with: "otp" and/or "webauthn"."""
        with self._uow.read() as uow:
            return self._factors(uow, user_id)

    def must_enrol_mfa(self, user: UserRecord) -> bool:
        """A member of a group marked ``mfa_required`` who has no second factor yet."""
        with self._uow.read() as uow:
            if self._factors(uow, user.id):
                return False
            return uow.groups.any_requires_mfa(user.groups)

    def factor_attempt_allowed(self, user: UserRecord, source_ip: str) -> bool:
        """Second-factor guesses count against the same bans as passwords."""
        return not self._regulator.banned(user.name, source_ip)

    def factor_failed(self, user: UserRecord, *, source_ip: str) -> None:
        """Count a wrong code (the factor's own service audits it, with the reason)."""
        self._regulator.record_failure(user.name, source_ip)

    def pending_session(self, token: str) -> tuple[SessionRecord, UserRecord] | None:
        """The pending (second factor owed) session for a cookie value, with its user."""
        return self._sessions.session_of_kind(token, SessionKind.PENDING)

    def login_with_passkey(
        self, user: UserRecord, *, source_ip: str, user_agent: str, device_id: str | None = None
    ) -> IssuedSession:
        """Open a full portal session for a user whose passkey the caller verified.

        The caller (``WebAuthnService.finish_passwordless``) has checked a passkey with user
        verification: possession and a fingerprint or PIN, two factors. Disabled users and
        service accounts are refused all the same. Bans are deliberately not consulted: a
        passkey cannot be guessed, and letting passkey holders in while their name is
        banned for password guessing is what stops password guessers locking them out.
        ``device_id``: the passkey is that device's platform credential.
        """
        now = self._clock.now()
        issued: IssuedSession | None = None
        with self._uow.write() as uow:
            current = uow.users.get_by_id(user.id)
            if current is None or not current.enabled or current.kind is UserKind.SERVICE:
                reason = "service-account" if current is not None and current.enabled else ""
                self._audit(
                    uow, self._failure(user.name, source_ip, reason or "user-disabled", now)
                )
            else:
                token = new_token()
                record = self._new_session(
                    token,
                    current.id,
                    kind=SessionKind.PORTAL,
                    methods=_IMPLIED["webauthn"],
                    now=now,
                    source_ip=source_ip,
                    user_agent=user_agent,
                    device_id=device_id,
                )
                uow.sessions.insert(record)
                self._signed_in(uow, current, record, now)
                issued = IssuedSession(
                    token, record, current, device_cookie=self._devices.issue(current.name)
                )
        # Raised after the commit, so the refusal's audit record persists.
        if issued is None:
            raise InvalidCredentials("this account cannot sign in")
        return issued

    def complete_second_factor(
        self,
        pending: SessionRecord,
        *,
        method: str,
        source_ip: str,
        user_agent: str,
        device_id: str | None = None,
    ) -> IssuedSession:
        """Turn a pending session into a full one after the caller verified a factor
        (``device_id``: a device's platform passkey). The pending id is revoked and a new
        id issued: a session id never gains rights."""
        return self._rotate(
            pending,
            expected=SessionKind.PENDING,
            methods=("pwd", *_IMPLIED.get(method, (method, "mfa"))),
            source_ip=source_ip,
            user_agent=user_agent,
            device_id=device_id,
        )

    def step_up(
        self,
        session: SessionRecord,
        *,
        method: str,
        source_ip: str,
        user_agent: str,
        device_id: str | None = None,
    ) -> IssuedSession:
        """Record a fresh verification of ``method`` on a signed-in session (new id); a
        device's platform passkey binds it to that device, other factors keep its binding."""
        added = _IMPLIED.get(method, (method, "mfa"))
        methods = tuple(dict.fromkeys((*session.auth_methods, *added)))
        return self._rotate(
            session,
            expected=SessionKind.PORTAL,
            methods=methods,
            source_ip=source_ip,
            user_agent=user_agent,
            device_id=device_id,
        )

    def _rotate(
        self,
        old: SessionRecord,
        *,
        expected: SessionKind,
        methods: tuple[str, ...],
        source_ip: str,
        user_agent: str,
        device_id: str | None,
    ) -> IssuedSession:
        if method_unknown := [m for m in methods if m not in _METHODS]:
            raise ValueError(f"unknown sign-in method {method_unknown[0]!r}")
        now = self._clock.now()
        token = new_token()
        with self._uow.write() as uow:
            current = uow.sessions.get(old.id_hash)
            if current is None or current.kind is not expected or not current.active(now):
                raise InvalidCredentials("the sign-in has expired; start again")
            user = uow.users.get_by_id(current.user_id)
            if user is None or not user.enabled:
                raise InvalidCredentials("wrong user name or password")
            uow.sessions.revoke(current.id_hash, now=now)
            record = self._new_session(
                token,
                user.id,
                kind=SessionKind.PORTAL,
                methods=methods,
                now=now,
                source_ip=source_ip,
                user_agent=user_agent,
                device_id=device_id or current.device_id,
            )
            uow.sessions.insert(record)
            if expected is SessionKind.PENDING:
                self._signed_in(uow, user, record, now)
            else:
                self._audit(
                    uow,
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name}",
                        action=Action.STEP_UP_SUCCEEDED,
                        outcome=Outcome.SUCCESS,
                        target="portal",
                        source=source_ip,
                        details={"session": record.id_hash[:12], "methods": list(methods)},
                    ),
                )
            uow.changes.record(ChangeEvent(Topic.SESSION, current.id_hash), now=now)
        device_cookie = self._devices.issue(user.name) if expected is SessionKind.PENDING else ""
        return IssuedSession(token, record, user, device_cookie=device_cookie)
