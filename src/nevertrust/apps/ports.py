"""Repositories the app catalog needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from nevertrust.apps.models import AppRecord, ConfigVersion, RuleRecord

__all__ = ["AppRepository", "ConfigRepository", "RuleRepository"]


class AppRepository(Protocol):
    def get_by_name(self, name: str) -> AppRecord | None: ...

    def list(self) -> Sequence[AppRecord]: ...

    def insert(
        self,
        *,
        name: str,
        upstream: str,
        description: str,
        now: datetime,
        labels: Mapping[str, str] | None = None,
    ) -> int: ...

    def update(
        self,
        app_id: int,
        *,
        upstream: str,
        description: str,
        now: datetime,
        labels: Mapping[str, str] | None = None,
    ) -> None: ...

    def delete(self, app_id: int) -> None: ...


class RuleRepository(Protocol):
    def list(self) -> Sequence[RuleRecord]: ...

    def insert(
        self,
        *,
        app_id: int,
        group_id: int,
        origin: str,
        now: datetime,
        require_compliant_device: bool = False,
    ) -> bool: ...

    def set_require_compliant_device(self, *, app_id: int, group_id: int, value: bool) -> bool:
        """Change an existing rule's device requirement; whether anything changed."""
        ...

    def delete(self, *, app_id: int, group_id: int) -> bool: ...

    def delete_for_app(self, app_id: int) -> int: ...


class ConfigRepository(Protocol):
    def insert(
        self,
        *,
        document: str,
        sha256: str,
        source: str,
        applied_by: str,
        summary: str,
        now: datetime,
    ) -> int: ...

    def list(self, *, limit: int = 50) -> Sequence[ConfigVersion]: ...

    def get(self, version: int) -> ConfigVersion | None: ...
