"""Core value objects shared by the decision point, the gateway and the services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "AccessRequest",
    "AccessRule",
    "App",
    "DeviceState",
    "Principal",
    "RiskLevel",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the identity as the decision point sees it."""

    user_id: int
    name: str
    groups: frozenset[str]
    enabled: bool = True
    display_name: str = ""
    email: str = ""
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class App:
    """An application published through the gateway at ``NAME.<base domain>``."""

    name: str
    upstream: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False)


@dataclass(frozen=True, slots=True)
class AccessRule:
    """Members of ``group`` may use ``app``: the shorthand rule of ``apps allow``.

    With ``require_compliant_device``, members of ``group`` also need a known, compliant
    device for ``app`` (``apps allow --require-compliant-device``).
    """

    rule_id: str
    app: str
    group: str
    require_compliant_device: bool = False


class RiskLevel(StrEnum):
    """Ordered: ``low < medium < high < critical``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


_RISK_RANK = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What is known about the device a request comes from."""

    device_id: str
    compliant: bool
    managed: bool = False
    platform: str = ""
    posture: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One request to decide: who, on what, to what, in what context.

    Attributes that are unknown stay None/empty; a condition about an unknown attribute
    is false (see docs/policy.md).
    """

    principal: Principal
    app: str
    method: str = "GET"
    path: str = "/"
    source_ip: str = ""
    auth_methods: frozenset[str] = frozenset()
    auth_time: datetime | None = None
    device: DeviceState | None = None
    country: str | None = None
    risk: RiskLevel | None = None
