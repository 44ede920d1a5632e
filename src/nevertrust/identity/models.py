"""Identity records as services see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "ApiKeyRecord",
    "BanRecord",
    "ChallengeRecord",
    "GroupRecord",
    "HandoffRecord",
    "SessionKind",
    "SessionRecord",
    "TotpRecord",
    "UserKind",
    "UserRecord",
    "WebAuthnCredentialRecord",
]


class UserKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"  # a machine identity; signs in only with API keys, has an owner


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
    kind: UserKind = UserKind.PERSON
    owner_id: int | None = None
    description: str = ""
    last_login_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: int
    name: str
    description: str
    members: tuple[str, ...] = ()
    mfa_required: bool = False


class SessionKind(StrEnum):
    PORTAL = "portal"  # the login session at auth.<domain>
    APP = "app"  # a per-app-host session, child of a portal session
    PENDING = "pending"  # password checked, second factor still owed; grants nothing


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
    last_seen_at: datetime | None = None
    # The device whose platform passkey opened (or stepped up) this browser's session;
    # app sessions handed out from it inherit it. None: the browser proves no device.
    device_id: str | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    @property
    def last_activity(self) -> datetime:
        return self.last_seen_at or self.created_at


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    code_hash: str
    session_hash: str
    app_name: str
    target: str
    state_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TotpRecord:
    user_id: int
    secret_enc: bytes
    created_at: datetime
    confirmed_at: datetime | None
    last_used_step: int | None


@dataclass(frozen=True, slots=True)
class WebAuthnCredentialRecord:
    id: int
    user_id: int
    credential_id: str  # base64url, as browsers send it
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    name: str
    aaguid: str
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None
    device_id: str | None = None  # registered as that device's platform credential


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    id_hash: str
    user_id: int | None
    purpose: str
    challenge: bytes
    created_at: datetime
    expires_at: datetime
    device_id: str | None = None  # a bind ceremony's device, verified when it began


@dataclass(frozen=True, slots=True)
class BanRecord:
    id: int
    subject: str  # "user:NAME" or "ip:ADDRESS"
    reason: str
    failures: int
    created_at: datetime
    expires_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None

    def active(self, now: datetime) -> bool:
        return self.lifted_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    user_id: int
    prefix: str
    secret_hash: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
