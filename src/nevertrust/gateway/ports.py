"""Repositories the gateway's key service needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from nevertrust.gateway.models import StoredKey

__all__ = ["KeyRepository"]


class KeyRepository(Protocol):
    def lock(self) -> None:
        """Serialise key changes until the transaction ends, across processes.

        Rotations and retirements read the keys, decide, then write: two replicas rotating
        at once must not both see the old key as due.
        """

    def list(self) -> Sequence[StoredKey]: ...

    def insert(self, key: StoredKey) -> None: ...

    def set_retired_at(self, kid: str, at: datetime) -> None: ...
