"""Repositories the identity services need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from nevertrust.identity.models import (
    ApiKeyRecord,
    BanRecord,
    ChallengeRecord,
    GroupRecord,
    HandoffRecord,
    SessionRecord,
    TotpRecord,
    UserKind,
    UserRecord,
    WebAuthnCredentialRecord,
)

__all__ = [
    "ApiKeyRepository",
    "BanRepository",
    "ChallengeRepository",
    "GroupRepository",
    "HandoffRepository",
    "SessionRepository",
    "RecoveryCodeRepository",
    "SetupTokenRepository",
    "TotpRepository",
    "UserRepository",
    "WebAuthnRepository",
]


class UserRepository(Protocol):
    def get_by_name(self, name: str) -> UserRecord | None: ...

    def get_by_id(self, user_id: int) -> UserRecord | None: ...

    def list(self) -> Sequence[UserRecord]: ...

    def insert(
        self,
        *,
        name: str,
        display_name: str,
        email: str,
        now: datetime,
        kind: UserKind = ...,
        owner_id: int | None = None,
        description: str = "",
    ) -> int: ...

    def set_last_login(self, user_id: int, *, now: datetime) -> None: ...

    def set_owner(self, user_id: int, owner_id: int | None, *, now: datetime) -> None: ...

    def set_description(self, user_id: int, description: str, *, now: datetime) -> None: ...

    def set_enabled(self, user_id: int, enabled: bool, *, now: datetime) -> None: ...

    def set_password_hash(self, user_id: int, password_hash: str, *, now: datetime) -> None: ...


class GroupRepository(Protocol):
    def get_by_name(self, name: str) -> GroupRecord | None: ...

    def list(self) -> Sequence[GroupRecord]: ...

    def insert(self, *, name: str, description: str, now: datetime) -> int: ...

    def add_member(self, group_id: int, user_id: int, *, now: datetime) -> bool: ...

    def remove_member(self, group_id: int, user_id: int) -> bool: ...

    def memberships(self) -> Sequence[tuple[int, str]]: ...

    def any_requires_mfa(self, names: Sequence[str]) -> bool: ...

    def set_mfa_required(self, group_id: int, required: bool) -> None: ...


class SessionRepository(Protocol):
    def insert(self, record: SessionRecord) -> None: ...

    def get(self, id_hash: str) -> SessionRecord | None: ...

    def revoke(self, id_hash: str, *, now: datetime) -> int: ...

    def revoke_user(self, user_id: int, *, now: datetime) -> int: ...

    def touch(self, seen: Sequence[tuple[str, datetime]]) -> None: ...

    def purge_expired(self, *, before: datetime) -> int: ...

    def list_active(
        self, *, now: datetime, user_id: int | None = None
    ) -> Sequence[SessionRecord]: ...


class HandoffRepository(Protocol):
    def insert(self, record: HandoffRecord) -> None: ...

    def redeem(self, code_hash: str, *, now: datetime) -> HandoffRecord | None: ...


class SetupTokenRepository(Protocol):
    def insert(
        self, *, token_hash: str, user_id: int, now: datetime, expires_at: datetime
    ) -> None: ...

    def redeem(self, token_hash: str, *, now: datetime) -> int | None: ...

    def peek(self, token_hash: str, *, now: datetime) -> int | None: ...


class TotpRepository(Protocol):
    def get(self, user_id: int) -> TotpRecord | None: ...

    def put(self, user_id: int, secret_enc: bytes, *, now: datetime) -> None: ...

    def confirm(self, user_id: int, *, step: int, now: datetime) -> None: ...

    def use_step(self, user_id: int, step: int) -> bool: ...

    def delete(self, user_id: int) -> bool: ...

    def confirmed_user_ids(self) -> set[int]: ...


class WebAuthnRepository(Protocol):
    def insert(
        self,
        *,
        user_id: int,
        credential_id: str,
        public_key: bytes,
        sign_count: int,
        transports: Sequence[str],
        name: str,
        aaguid: str,
        backed_up: bool,
        now: datetime,
        device_id: str | None = None,
    ) -> int: ...

    def list_for_user(self, user_id: int) -> Sequence[WebAuthnCredentialRecord]: ...

    def get_by_credential_id(self, credential_id: str) -> WebAuthnCredentialRecord | None: ...

    def record_use(self, credential_pk: int, *, sign_count: int, now: datetime) -> None: ...

    def rename(self, user_id: int, credential_pk: int, name: str) -> bool: ...

    def delete(self, user_id: int, credential_pk: int) -> bool: ...

    def delete_all(self, user_id: int) -> int: ...

    def user_ids(self) -> set[int]: ...


class RecoveryCodeRepository(Protocol):
    def replace(self, user_id: int, code_hashes: Sequence[str], *, now: datetime) -> None: ...

    def redeem(self, user_id: int, code_hash: str, *, now: datetime) -> bool: ...

    def remaining(self, user_id: int) -> int: ...

    def delete_all(self, user_id: int) -> int: ...


class ChallengeRepository(Protocol):
    def insert(self, record: ChallengeRecord) -> None: ...

    def take(self, id_hash: str, *, purpose: str, now: datetime) -> ChallengeRecord | None: ...


class BanRepository(Protocol):
    def insert(
        self, *, subject: str, reason: str, failures: int, now: datetime, expires_at: datetime
    ) -> int: ...

    def active_for(self, subjects: Sequence[str], *, now: datetime) -> Sequence[BanRecord]: ...

    def list_active(self, *, now: datetime) -> Sequence[BanRecord]: ...

    def latest(self, subjects: Sequence[str]) -> Sequence[BanRecord]:
        """The newest ban of each subject (active, expired or lifted), if it ever had one."""
        ...

    def lift(self, subject: str, *, by: str, now: datetime) -> int: ...


class ApiKeyRepository(Protocol):
    def insert(
        self,
        *,
        user_id: int,
        prefix: str,
        secret_hash: str,
        name: str,
        scopes: Sequence[str],
        created_by: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> int: ...

    def get_by_prefix(self, prefix: str) -> ApiKeyRecord | None: ...

    def list_for_user(self, user_id: int | None = None) -> Sequence[ApiKeyRecord]: ...

    def touch(self, used: Sequence[tuple[int, datetime]]) -> None: ...

    def revoke(self, key_id: int, *, now: datetime) -> bool: ...

    def set_expiry(self, key_id: int, expires_at: datetime) -> None: ...
