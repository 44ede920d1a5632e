"""The compiled condition type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from nevertrust.domain.models import AccessRequest

__all__ = ["Condition", "Explain", "Test"]

Test = Callable[[AccessRequest, datetime], bool]
Explain = Callable[[AccessRequest, datetime], str]


@dataclass(frozen=True, slots=True)
class Condition:
    name: str  # stable, e.g. "groups", "device.compliant", "source.cidr"
    test: Test
    explain: Explain  # why it failed, in words; only called on denials
