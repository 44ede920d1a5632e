"""The policy decision point: parse and compile policies once, decide per request."""

from __future__ import annotations

from nevertrust.pdp.engine import decide, evaluate_ruleset
from nevertrust.pdp.errors import PolicyError
from nevertrust.pdp.language import PolicyDocument
from nevertrust.pdp.parse import json_schema, parse_policy_document
from nevertrust.pdp.snapshot import CompiledApp, PolicySnapshot, RuleSet, compile_snapshot

__all__ = [
    "CompiledApp",
    "PolicyDocument",
    "PolicyError",
    "PolicySnapshot",
    "RuleSet",
    "compile_snapshot",
    "decide",
    "evaluate_ruleset",
    "json_schema",
    "parse_policy_document",
]
