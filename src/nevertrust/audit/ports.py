"""The audit store contract."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from nevertrust.audit.models import AuditEntry, SealedRecord

__all__ = ["AuditRepository"]


class AuditRepository(Protocol):
    def append(self, entries: Sequence[AuditEntry]) -> Sequence[SealedRecord]:
        """Seal and store entries after the current head, serialised with other writers."""
        ...

    def tail(self, limit: int) -> Sequence[SealedRecord]: ...

    def iterate(self, *, batch: int = 5000) -> Iterator[SealedRecord]: ...

    def head(self) -> tuple[int, str]: ...
