"""The policy decision point: compile rules into an index once, decide per request."""

from __future__ import annotations

from nevertrust.pdp.engine import decide
from nevertrust.pdp.snapshot import PolicySnapshot, compile_snapshot

__all__ = ["PolicySnapshot", "compile_snapshot", "decide"]
