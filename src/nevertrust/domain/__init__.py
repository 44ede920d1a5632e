"""Pure data and decisions: no I/O, no framework, no clock reads."""

from __future__ import annotations

from nevertrust.domain.decision import Decision, Effect, Reason
from nevertrust.domain.models import AccessRequest, AccessRule, App, Principal
from nevertrust.domain.names import validate_name

__all__ = [
    "AccessRequest",
    "AccessRule",
    "App",
    "Decision",
    "Effect",
    "Principal",
    "Reason",
    "validate_name",
]
