"""Service accounts (machine identities) and their API keys.

A service account is a user of kind ``service``: it has no password and cannot sign in at
the portal, but it can be put in groups, so every authorization rule treats it like any
other principal. It always has an owner, a person answerable for it. It authenticates with
API keys (see ``identity.api_keys``), which carry coarse scopes and always expire; what
the account may do is still decided by its groups.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.domain.names import validate_name
from nevertrust.errors import InvalidInput
from nevertrust.identity import api_keys as keys
from nevertrust.identity.directory import DirectoryService
from nevertrust.identity.errors import UnknownUser
from nevertrust.identity.inventory import KeyView, ServiceAccount, build_inventory
from nevertrust.identity.models import ApiKeyRecord, UserKind, UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "InvalidOwner",
    "KeyNotActive",
    "NotAServiceAccount",
    "ServiceAccountDisabled",
    "ServiceAccountService",
]

# A key's last use is written at most this often: never a database write per request.
TOUCH_INTERVAL = timedelta(minutes=1)
# Looked up when the presented key is malformed, so every path costs the same work. It is
# outside the prefix alphabet ("0" is not base32), so it can never match a real key.
_NO_PREFIX = "0" * keys.PREFIX_LENGTH
_NO_HASH = "0" * 64


class NotAServiceAccount(InvalidInput):
    code = "not-a-service-account"


class InvalidOwner(InvalidInput):
    code = "invalid-owner"


class ServiceAccountDisabled(InvalidInput):
    code = "service-account-disabled"


class KeyNotActive(InvalidInput):
    code = "api-key-not-active"


def _audit(
    uow: UnitOfWork, action: Action, now: datetime, actor: str, target: str, **details: object
) -> None:
    uow.audit.append([success(action, ts=now, actor=actor, target=target, **details)])


def _service_account(uow: UnitOfWork, name: str) -> UserRecord:
    user = uow.users.get_by_name(name)
    if user is None:
        raise UnknownUser(f"no service account named {name!r}", name=name)
    if user.kind is not UserKind.SERVICE:
        raise NotAServiceAccount(
            f"{name!r} is a person, not a service account", name=name, field="name"
        )
    return user


def _owner(uow: UnitOfWork, name: str) -> UserRecord:
    owner = uow.users.get_by_name(name)
    if owner is None:
        raise InvalidOwner(f"owner {name!r}: no such user", field="owner")
    if owner.kind is not UserKind.PERSON:
        raise InvalidOwner(
            f"owner {name!r} is a service account: an owner must be a person", field="owner"
        )
    if not owner.enabled:
        raise InvalidOwner(f"owner {name!r} is disabled: choose an active person", field="owner")
    return owner


def _key(uow: UnitOfWork, prefix: str) -> ApiKeyRecord:
    key = uow.api_keys.get_by_prefix(prefix) if keys.is_prefix(prefix) else None
    if key is None:
        raise keys.UnknownApiKey(f"no API key with prefix {prefix[:40]!r}", field="prefix")
    return key


class ServiceAccountService:
    """Create and own service accounts; issue, rotate, revoke and check their API keys."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, directory: DirectoryService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._directory = directory
        self._touched: dict[int, datetime] = {}
        self._touch_lock = threading.Lock()

    # Accounts

    def create(self, name: str, *, owner: str, description: str = "", actor: str) -> ServiceAccount:
        validate_name("user", name)
        now = self._clock.now()
        with self._uow.write() as uow:
            owner_record = _owner(uow, owner)
            user_id = uow.users.insert(
                name=name,
                display_name="",
                email="",
                now=now,
                kind=UserKind.SERVICE,
                owner_id=owner_record.id,
                description=description[:500],
            )
            _audit(uow, Action.SERVICE_ACCOUNT_CREATED, now, actor, f"user:{name}", owner=owner)
            # The gateway snapshot lists every principal, machines included.
            uow.changes.record(ChangeEvent(Topic.USER, str(user_id)), now=now)
        return self.get(name)

    def get(self, name: str) -> ServiceAccount:
        with self._uow.read() as uow:
            account = _service_account(uow, name)
            users = uow.users.list()
            account_keys = uow.api_keys.list_for_user(account.id)
        [found] = [
            a for a in build_inventory(users, account_keys, self._clock.now()) if a.name == name
        ]
        return found

    def inventory(self) -> list[ServiceAccount]:
        """Every service account with its owner, groups and keys (stale ones flagged)."""
        with self._uow.read() as uow:
            users = uow.users.list()
            all_keys = uow.api_keys.list_for_user(None)
        return build_inventory(users, all_keys, self._clock.now())

    def set_owner(self, name: str, owner: str, *, actor: str) -> ServiceAccount:
        now = self._clock.now()
        with self._uow.write() as uow:
            account = _service_account(uow, name)
            owner_record = _owner(uow, owner)
            uow.users.set_owner(account.id, owner_record.id, now=now)
            previous = uow.users.get_by_id(account.owner_id) if account.owner_id else None
            _audit(
                uow,
                Action.SERVICE_ACCOUNT_OWNER_SET,
                now,
                actor,
                f"user:{name}",
                owner=owner,
                previous=previous.name if previous else None,
            )
        return self.get(name)

    def set_enabled(self, name: str, enabled: bool, *, actor: str) -> ServiceAccount:
        """Disabling stops every key of the account at once (keys are checked per request)."""
        with self._uow.read() as uow:
            _service_account(uow, name)
        self._directory.set_enabled(name, enabled, actor=actor)
        return self.get(name)

    # Keys

    def list_keys(self, account: str) -> tuple[KeyView, ...]:
        return self.get(account).keys

    def key(self, prefix: str) -> KeyView:
        with self._uow.read() as uow:
            key = _key(uow, prefix)
            siblings = uow.api_keys.list_for_user(key.user_id)
        retired = keys.superseded_ids(list(siblings))
        return KeyView.of(key, self._clock.now(), superseded=key.id in retired)

    def issue_key(
        self,
        account: str,
        name: str,
        scopes: Sequence[str],
        ttl: timedelta | None = None,
        *,
        actor: str,
    ) -> tuple[str, ApiKeyRecord]:
        """A new key; the plaintext is returned once and never stored."""
        validate_name("key", name)
        checked = keys.check_scopes(tuple(scopes))
        lifetime = keys.check_ttl(ttl)
        prefix, secret = keys.new_prefix(), keys.new_secret()
        now = self._clock.now()
        with self._uow.write() as uow:
            user = self._usable_account(uow, account)
            record = self._insert_key(
                uow, user, prefix, secret, name, checked, now, now + lifetime, actor
            )
            _audit(
                uow,
                Action.API_KEY_ISSUED,
                now,
                actor,
                f"user:{account}",
                prefix=prefix,
                key=name,
                scopes=list(checked),
                expires_at=record.expires_at.isoformat() if record.expires_at else None,
            )
        return keys.format_key(prefix, secret), record

    def rotate_key(
        self, prefix: str, grace: timedelta | None = None, *, actor: str
    ) -> tuple[str, ApiKeyRecord]:
        """A new key with the old one's name, scopes and lifetime; the old one ends soon.

        The grace period (24 h by default) lets deployments switch without an outage; the
        old key never lives longer than it already would have.
        """
        grace = keys.check_grace(grace)
        new_prefix, secret = keys.new_prefix(), keys.new_secret()
        now = self._clock.now()
        with self._uow.write() as uow:
            old = _key(uow, prefix)
            status = keys.key_status(old, now)
            if status is not keys.KeyStatus.ACTIVE:
                raise KeyNotActive(
                    f"API key {prefix} is {status}: issue a new key instead", field="prefix"
                )
            user = uow.users.get_by_id(old.user_id)
            assert user is not None  # noqa: S101 - api_keys.user_id references users.id
            self._usable_account(uow, user.name)
            lifetime = min(
                keys.MAX_TTL, (old.expires_at or now + keys.DEFAULT_TTL) - old.created_at
            )
            new = self._insert_key(
                uow, user, new_prefix, secret, old.name, old.scopes, now, now + lifetime, actor
            )
            old_end = min(old.expires_at, now + grace) if old.expires_at else now + grace
            uow.api_keys.set_expiry(old.id, old_end)
            _audit(
                uow,
                Action.API_KEY_ROTATED,
                now,
                actor,
                f"user:{user.name}",
                prefix=new_prefix,
                previous=prefix,
                previous_expires_at=old_end.isoformat(),
                key=old.name,
            )
        return keys.format_key(new_prefix, secret), new

    def revoke_key(self, prefix: str, *, actor: str) -> bool:
        """Stop a key now. Returns False if it was already revoked."""
        now = self._clock.now()
        with self._uow.write() as uow:
            key = _key(uow, prefix)
            changed = uow.api_keys.revoke(key.id, now=now)
            if changed:
                user = uow.users.get_by_id(key.user_id)
                _audit(
                    uow,
                    Action.API_KEY_REVOKED,
                    now,
                    actor,
                    f"user:{user.name if user else key.user_id}",
                    prefix=prefix,
                    key=key.name,
                )
        return changed

    def _usable_account(self, uow: UnitOfWork, name: str) -> UserRecord:
        user = _service_account(uow, name)
        if not user.enabled:
            raise ServiceAccountDisabled(
                f"service account {name!r} is disabled: enable it before issuing keys",
                field="name",
            )
        return user

    @staticmethod
    def _insert_key(
        uow: UnitOfWork,
        user: UserRecord,
        prefix: str,
        secret: str,
        name: str,
        scopes: tuple[str, ...],
        now: datetime,
        expires_at: datetime,
        actor: str,
    ) -> ApiKeyRecord:
        uow.api_keys.insert(
            user_id=user.id,
            prefix=prefix,
            secret_hash=keys.hash_secret(secret),
            name=name,
            scopes=scopes,
            created_by=actor,
            now=now,
            expires_at=expires_at,
        )
        record = uow.api_keys.get_by_prefix(prefix)
        assert record is not None  # noqa: S101 - inserted just above, same transaction
        return record

    # Authentication

    def authenticate(
        self, plaintext: str, *, source_ip: str = ""
    ) -> tuple[UserRecord, ApiKeyRecord] | None:
        """The enabled service account and live key ``plaintext`` names, or None.

        Malformed, unknown, wrong, revoked and expired keys and disabled accounts all cost
        one lookup, one hash, one constant-time comparison and one audit record, so timing
        does not tell which it was. The reason is in the audit record, never the secret.
        """
        now = self._clock.now()
        parsed = keys.parse_key(plaintext[:200])
        prefix = parsed.prefix if parsed else _NO_PREFIX
        with self._uow.read() as uow:
            key = uow.api_keys.get_by_prefix(prefix)
            user = uow.users.get_by_id(key.user_id if key else 0)
        matches = keys.secret_matches(
            parsed.secret if parsed else "", key.secret_hash if key else _NO_HASH
        )
        reason = ""
        if parsed is None:
            reason = "malformed"
        elif key is None:
            reason = "unknown-key"
        elif not matches:
            reason = "wrong-secret"
        elif key.revoked_at is not None:
            reason = "revoked"
        elif not key.usable(now):
            reason = "expired"
        elif user is None or user.kind is not UserKind.SERVICE:
            reason = "not-a-service-account"
        elif not user.enabled:
            reason = "account-disabled"
        if reason:
            self.reject(
                prefix if parsed else "",
                reason,
                source_ip=source_ip,
                account=user.name if user and key else "",
            )
            return None
        assert key is not None and user is not None  # noqa: S101 - narrowed by reason == ""
        self._touch(key, now)
        return user, key

    def reject(self, prefix: str, reason: str, *, source_ip: str, account: str = "") -> None:
        """Audit a refused key (also used by the API for a missing scope or group)."""
        with self._uow.write() as uow:
            uow.audit.append(
                [
                    AuditEntry(
                        ts=self._clock.now(),
                        actor=f"user:{account}" if account else "anonymous",
                        action=Action.API_KEY_REJECTED,
                        outcome=Outcome.FAILURE,
                        target=f"api-key:{prefix}" if prefix else "api-key",
                        source=source_ip[:100],
                        reason=reason,
                    )
                ]
            )

    def _touch(self, key: ApiKeyRecord, now: datetime) -> None:
        with self._touch_lock:
            seen = [t for t in (key.last_used_at, self._touched.get(key.id)) if t is not None]
            if seen and now - max(seen) < TOUCH_INTERVAL:
                return
            self._touched[key.id] = now
        with self._uow.write() as uow:
            uow.api_keys.touch([(key.id, now)])
