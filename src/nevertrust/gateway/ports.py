"""Repositories the gateway's key service needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nevertrust.gateway.models import StoredKey

__all__ = ["KeyRepository"]


class KeyRepository(Protocol):
    def list(self) -> Sequence[StoredKey]: ...

    def insert(self, key: StoredKey) -> None: ...
