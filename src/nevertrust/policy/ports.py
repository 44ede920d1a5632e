"""The policy store contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from nevertrust.policy.models import PolicyVersion

__all__ = ["PolicyRepository"]


class PolicyRepository(Protocol):
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

    def latest(self) -> PolicyVersion | None: ...

    def get(self, version: int) -> PolicyVersion | None: ...

    def list(self, *, limit: int = 50) -> Sequence[PolicyVersion]: ...
