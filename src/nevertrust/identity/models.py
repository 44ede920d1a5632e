"""Identity records as services see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = ["GroupRecord", "HandoffRecord", "SessionKind", "SessionRecord", "UserRecord"]


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    display_name: str
    email: str
    password_hash: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: int
    name: str
    description: str
    members: tuple[str, ...] = ()


class SessionKind(StrEnum):
    PORTAL = "portal"  # the login session at auth.<domain>
    APP = "app"  # a per-app-host session, child of a portal session


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: str
    user_id: int
    kind: SessionKind
    parent_hash: str | None
    app_name: str | None
    auth_methods: tuple[str, ...]
    auth_time: datetime
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    source_ip: str
    user_agent: str

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    code_hash: str
    session_hash: str
    app_name: str
    target: str
    state_hash: str
    expires_at: datetime
