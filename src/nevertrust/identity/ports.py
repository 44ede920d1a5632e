"""Repositories the identity services need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from nevertrust.identity.models import GroupRecord, HandoffRecord, SessionRecord, UserRecord

__all__ = [
    "GroupRepository",
    "HandoffRepository",
    "SessionRepository",
    "SetupTokenRepository",
    "UserRepository",
]


class UserRepository(Protocol):
    def get_by_name(self, name: str) -> UserRecord | None: ...

    def get_by_id(self, user_id: int) -> UserRecord | None: ...

    def list(self) -> Sequence[UserRecord]: ...

    def insert(self, *, name: str, display_name: str, email: str, now: datetime) -> int: ...

    def set_enabled(self, user_id: int, enabled: bool, *, now: datetime) -> None: ...

    def set_password_hash(self, user_id: int, password_hash: str, *, now: datetime) -> None: ...


class GroupRepository(Protocol):
    def get_by_name(self, name: str) -> GroupRecord | None: ...

    def list(self) -> Sequence[GroupRecord]: ...

    def insert(self, *, name: str, description: str, now: datetime) -> int: ...

    def add_member(self, group_id: int, user_id: int, *, now: datetime) -> bool: ...

    def remove_member(self, group_id: int, user_id: int) -> bool: ...

    def memberships(self) -> Sequence[tuple[int, str]]: ...


class SessionRepository(Protocol):
    def insert(self, record: SessionRecord) -> None: ...

    def get(self, id_hash: str) -> SessionRecord | None: ...

    def revoke(self, id_hash: str, *, now: datetime) -> int: ...

    def revoke_user(self, user_id: int, *, now: datetime) -> int: ...

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
