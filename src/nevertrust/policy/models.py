"""Policy records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["PolicyVersion"]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One applied policy document; the highest version is the one in force."""

    version: int
    document: str
    sha256: str
    source: str
    applied_by: str
    applied_at: datetime
    summary: str
