"""Use cases for people and groups: the admin side of identity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token, new_token
from nevertrust.domain import Principal
from nevertrust.domain.names import validate_name
from nevertrust.errors import InvalidInput
from nevertrust.identity.errors import UnknownGroup, UnknownUser, WeakPassword
from nevertrust.identity.models import GroupRecord, UserKind, UserRecord
from nevertrust.identity.password_strength import MIN_SCORE, weakness
from nevertrust.identity.passwords import Passwords

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["ADMIN_GROUP", "DirectoryService", "check_password_policy"]

# Members of this group may use the console and the admin API.
ADMIN_GROUP = "admins"

_MAX_PASSWORD = 1024


def check_password_policy(
    password: str, *, username: str, min_length: int, min_score: int = MIN_SCORE
) -> None:
    """Reject passwords that are too short, absurdly long, or the user's own name."""
    if len(password) < min_length:
        raise WeakPassword(
            f"password too short: expected at least {min_length} characters, got {len(password)}",
            field="password",
        )
    if len(password) > _MAX_PASSWORD:
        raise WeakPassword(f"password longer than {_MAX_PASSWORD} characters", field="password")
    if password.strip().lower() == username.lower():
        raise WeakPassword("password must not be the user name", field="password")
    reason = weakness(password, related=[username], min_score=min_score)
    if reason is not None:
        raise WeakPassword(f"password too easy to guess: {reason}", field="password")


def _require_user(uow: UnitOfWork, name: str) -> UserRecord:
    user = uow.users.get_by_name(name)
    if user is None:
        raise UnknownUser(f"no user named {name!r}", name=name)
    return user


def _require_person(uow: UnitOfWork, name: str) -> UserRecord:
    """Passwords and setup links are for people: a service account must never sign in."""
    user = _require_user(uow, name)
    if user.kind is not UserKind.PERSON:
        raise InvalidInput(
            f"{name!r} is a service account: it has no password and uses API keys",
            field="name",
        )
    return user


def _require_group(uow: UnitOfWork, name: str) -> GroupRecord:
    group = uow.groups.get_by_name(name)
    if group is None:
        raise UnknownGroup(f"no group named {name!r}", name=name)
    return group


class DirectoryService:
    """Create, change and list users and groups; every change is audited and announced."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        min_password_length: int,
        min_password_score: int = MIN_SCORE,
        setup_link_ttl: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._min_password_length = min_password_length
        self._min_password_score = min_password_score
        self._setup_link_ttl = setup_link_ttl

    def _check_password(self, password: str, username: str) -> None:
        check_password_policy(
            password,
            username=username,
            min_length=self._min_password_length,
            min_score=self._min_password_score,
        )

    def _audit(
        self, uow: UnitOfWork, action: Action, *, actor: str, target: str, **details: object
    ) -> None:
        uow.audit.append(
            [success(action, ts=self._clock.now(), actor=actor, target=target, **details)]
        )

    # Users

    def add_user(
        self,
        name: str,
        *,
        actor: str,
        password: str | None = None,
        display_name: str = "",
        email: str = "",
    ) -> UserRecord:
        validate_name("user", name)
        if password is not None:
            self._check_password(password, name)
        # Hash before the transaction: argon2 takes tens of milliseconds.
        password_hash = self._passwords.hash(password) if password is not None else None
        now = self._clock.now()
        with self._uow.write() as uow:
            user_id = uow.users.insert(
                name=name, display_name=display_name[:200], email=email[:320], now=now
            )
            if password_hash is not None:
                uow.users.set_password_hash(user_id, password_hash, now=now)
            self._audit(uow, Action.USER_CREATED, actor=actor, target=f"user:{name}")
            uow.changes.record(ChangeEvent(Topic.USER, str(user_id)), now=now)
            return _require_user(uow, name)

    def get_user(self, name: str) -> UserRecord:
        with self._uow.read() as uow:
            return _require_user(uow, name)

    def list_users(self) -> Sequence[UserRecord]:
        with self._uow.read() as uow:
            return uow.users.list()

    def principals(self) -> list[Principal]:
        """Every user as the decision point sees them, for the gateway snapshot."""
        return [
            Principal(
                user_id=u.id,
                name=u.name,
                groups=frozenset(u.groups),
                enabled=u.enabled,
                display_name=u.display_name,
                email=u.email,
            )
            for u in self.list_users()
        ]

    def set_enabled(self, name: str, enabled: bool, *, actor: str) -> UserRecord:
        """Disable (or re-enable) a user. Disabling also revokes every session at once."""
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_user(uow, name)
            uow.users.set_enabled(user.id, enabled, now=now)
            revoked = 0 if enabled else uow.sessions.revoke_user(user.id, now=now)
            action = Action.USER_ENABLED if enabled else Action.USER_DISABLED
            self._audit(uow, action, actor=actor, target=f"user:{name}", sessions_revoked=revoked)
            uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
            if not enabled:
                uow.changes.record(ChangeEvent(Topic.USER_SESSIONS, str(user.id)), now=now)
            return _require_user(uow, name)

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        self._check_password(password, name)
        password_hash = self._passwords.hash(password)
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_person(uow, name)
            uow.users.set_password_hash(user.id, password_hash, now=now)
            self._audit(uow, Action.PASSWORD_SET, actor=actor, target=f"user:{name}")

    def issue_setup_link_token(self, name: str, *, actor: str) -> str:
        """A one-time token that lets the user choose a password; only its hash is stored."""
        token = new_token()
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_person(uow, name)
            uow.setup_tokens.insert(
                token_hash=hash_token(token),
                user_id=user.id,
                now=now,
                expires_at=now + self._setup_link_ttl,
            )
            self._audit(uow, Action.SETUP_LINK_ISSUED, actor=actor, target=f"user:{name}")
        return token

    def setup_link_user(self, token: str) -> UserRecord | None:
        with self._uow.read() as uow:
            user_id = uow.setup_tokens.peek(hash_token(token), now=self._clock.now())
            return None if user_id is None else uow.users.get_by_id(user_id)

    def complete_setup(self, token: str, password: str) -> UserRecord | None:
        """Set the password through a setup link; None when the link is unknown or used."""
        user = self.setup_link_user(token)
        if user is None or user.kind is not UserKind.PERSON:
            return None
        self._check_password(password, user.name)
        password_hash = self._passwords.hash(password)
        now = self._clock.now()
        with self._uow.write() as uow:
            user_id = uow.setup_tokens.redeem(hash_token(token), now=now)
            if user_id is None:  # lost a race with another use of the same link
                return None
            uow.users.set_password_hash(user_id, password_hash, now=now)
            self._audit(
                uow,
                Action.PASSWORD_SET,
                actor=f"user:{user.name}",
                target=f"user:{user.name}",
                via="setup-link",
            )
            return uow.users.get_by_id(user_id)

    # Groups

    def add_group(self, name: str, *, actor: str, description: str = "") -> GroupRecord:
        validate_name("group", name)
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.groups.insert(name=name, description=description[:500], now=now)
            self._audit(uow, Action.GROUP_CREATED, actor=actor, target=f"group:{name}")
            uow.changes.record(ChangeEvent(Topic.GROUP, name), now=now)
            return _require_group(uow, name)

    def list_groups(self) -> Sequence[GroupRecord]:
        with self._uow.read() as uow:
            return uow.groups.list()

    def set_membership(self, group: str, user: str, member: bool, *, actor: str) -> bool:
        """Add or remove ``user`` in ``group``; returns whether anything changed."""
        now = self._clock.now()
        with self._uow.write() as uow:
            group_record = _require_group(uow, group)
            user_record = _require_user(uow, user)
            if member:
                changed = uow.groups.add_member(group_record.id, user_record.id, now=now)
                action = Action.GROUP_MEMBER_ADDED
            else:
                changed = uow.groups.remove_member(group_record.id, user_record.id)
                action = Action.GROUP_MEMBER_REMOVED
            if changed:
                self._audit(uow, action, actor=actor, target=f"group:{group}", user=user)
                uow.changes.record(ChangeEvent(Topic.USER, str(user_record.id)), now=now)
            return changed

    def set_group_mfa_required(self, group: str, required: bool, *, actor: str) -> GroupRecord:
        """Mark a group whose members must have a second factor to sign in.

        The login flow enforces it (``GroupRecord.mfa_required``); the change event makes
        every replica see the new requirement at once.
        """
        now = self._clock.now()
        with self._uow.write() as uow:
            record = _require_group(uow, group)
            if record.mfa_required != required:
                uow.groups.set_mfa_required(record.id, required)
                self._audit(
                    uow,
                    Action.GROUP_MFA_REQUIRED,
                    actor=actor,
                    target=f"group:{group}",
                    required=required,
                )
                uow.changes.record(ChangeEvent(Topic.GROUP, group), now=now)
            return _require_group(uow, group)
