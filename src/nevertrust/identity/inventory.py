"""Service accounts as inventories and reports show them: owners, groups, key states. Pure.

Kept apart from the service so the identity report can build the same views from one
consistent read, and so the rules (who counts as an owner, which key is stale) live once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nevertrust.identity import api_keys as keys
from nevertrust.identity.models import ApiKeyRecord, UserKind, UserRecord

__all__ = ["KeyView", "ServiceAccount", "build_inventory", "owner_problem"]


@dataclass(frozen=True, slots=True)
class KeyView:
    """An API key as lists show it: everything but the hash."""

    prefix: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: keys.KeyStatus
    stale: bool

    @classmethod
    def of(cls, key: ApiKeyRecord, now: datetime, *, superseded: bool) -> KeyView:
        return cls(
            prefix=key.prefix,
            name=key.name,
            scopes=key.scopes,
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            status=keys.key_status(key, now),
            stale=keys.is_stale(key, now, superseded=superseded),
        )


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    name: str
    description: str
    enabled: bool
    owner: str | None
    owner_problem: str | None  # None when the owner is an enabled person
    groups: tuple[str, ...]
    created_at: datetime
    keys: tuple[KeyView, ...]

    @property
    def stale_keys(self) -> tuple[str, ...]:
        return tuple(k.prefix for k in self.keys if k.stale)


def owner_problem(account: UserRecord, users_by_id: dict[int, UserRecord]) -> str | None:
    """Why the account has no answerable owner (stable codes), or None if it has one."""
    if account.owner_id is None:
        return "no-owner"
    owner = users_by_id.get(account.owner_id)
    if owner is None:
        return "owner-missing"
    if owner.kind is not UserKind.PERSON:
        return "owner-not-a-person"
    if not owner.enabled:
        return "owner-disabled"
    return None


def build_inventory(
    users: Sequence[UserRecord], all_keys: Sequence[ApiKeyRecord], now: datetime
) -> list[ServiceAccount]:
    """The service accounts among ``users``, with owner names and key views at ``now``."""
    by_id = {u.id: u for u in users}
    retired = keys.superseded_ids(list(all_keys))
    keys_of: dict[int, list[KeyView]] = {}
    for key in all_keys:
        view = KeyView.of(key, now, superseded=key.id in retired)
        keys_of.setdefault(key.user_id, []).append(view)
    return [
        ServiceAccount(
            name=u.name,
            description=u.description,
            enabled=u.enabled,
            owner=by_id[u.owner_id].name if u.owner_id in by_id else None,
            owner_problem=owner_problem(u, by_id),
            groups=u.groups,
            created_at=u.created_at,
            keys=tuple(keys_of.get(u.id, ())),
        )
        for u in users
        if u.kind is UserKind.SERVICE
    ]
