"""Pure data and decisions: no I/O, no framework, no clock reads."""

from __future__ import annotations

from nevertrust.domain.decision import Decision, Effect, Reason, RuleTrace, StepUp, explain
from nevertrust.domain.models import (
    AccessRequest,
    AccessRule,
    App,
    DeviceState,
    Principal,
    RiskLevel,
)
from nevertrust.domain.names import validate_name

__all__ = [
    "AccessRequest",
    "AccessRule",
    "App",
    "Decision",
    "DeviceState",
    "Effect",
    "Principal",
    "Reason",
    "RiskLevel",
    "RuleTrace",
    "StepUp",
    "explain",
    "validate_name",
]
