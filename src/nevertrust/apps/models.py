"""App catalog records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleRecord:
    rule_id: str
    app: str
    group: str
    origin: str
    require_compliant_device: bool = False


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    sha256: str
    source: str
    applied_by: str
    applied_at: datetime
    summary: str
    document: str
