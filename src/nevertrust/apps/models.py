"""App catalog records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["AppRecord", "ConfigVersion", "RuleRecord"]


@dataclass(frozen=True, slots=True)
class AppRecord:
    id: int
    name: str
    upstream: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RuleRecord:
    rule_id: str
    app: str
    group: str
    origin: str


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    sha256: str
    source: str
    applied_by: str
    applied_at: datetime
    summary: str
    document: str
