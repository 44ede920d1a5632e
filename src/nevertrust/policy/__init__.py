"""Policies as a service: versions, what-if, replay and test files."""

from __future__ import annotations

from nevertrust.policy.cases import CaseResult, PolicyTestFile, load_cases, run_cases
from nevertrust.policy.errors import InvalidCases, InvalidRequestSpec, UnknownPolicyVersion
from nevertrust.policy.models import PolicyVersion
from nevertrust.policy.replay import ReplayReport, replay
from nevertrust.policy.requests import DeviceSpec, RequestSpec, decision_json
from nevertrust.policy.service import AppliedPolicy, PolicyService

__all__ = [
    "AppliedPolicy",
    "CaseResult",
    "DeviceSpec",
    "InvalidCases",
    "InvalidRequestSpec",
    "PolicyService",
    "PolicyTestFile",
    "PolicyVersion",
    "ReplayReport",
    "RequestSpec",
    "UnknownPolicyVersion",
    "decision_json",
    "load_cases",
    "replay",
    "run_cases",
]
