"""Policy test files, run by ``nevertrust policy test FILE`` (in the spirit of ``opa test``).

policy: policy.yaml          # optional: the document under test, relative to this file
apps:                        # optional: default, every app a case names, unlabelled
  - name: wiki
    labels: {env: prod}
cases:
  - name: engineers read the wiki
    request: {user: alice, groups: [eng], app: wiki, method: GET, path: /}
    expect: allow            # allow | deny | step-up | require-device
    reason: allowed-by-rule  # optional
    rule: wiki/engineers     # optional
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nevertrust.domain import App, Decision
from nevertrust.pdp import PolicyDocument, compile_snapshot, decide
from nevertrust.policy.errors import InvalidCases
from nevertrust.policy.requests import RequestSpec
from nevertrust.yamldoc import load_model

__all__ = ["CaseResult", "PolicyTestFile", "load_cases", "run_cases"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSpec(_Strict):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class Case(_Strict):
    name: str = Field(min_length=1, max_length=200)
    request: RequestSpec
    expect: Literal["allow", "deny", "step-up", "require-device"]
    reason: str | None = None
    rule: str | None = None


class PolicyTestFile(_Strict):
    policy: str | None = None
    apps: list[AppSpec] | None = None
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    decision: Decision
    problem: str = ""


def load_cases(text: str, *, file: str) -> PolicyTestFile:
    def error(message: str, line: int, column: int) -> InvalidCases:
        return InvalidCases(
            f"{file}:{line}:{column}: {message}", file=file, line=line, column=column
        )

    tests, _root = load_model(text, model=PolicyTestFile, error=error, what="'cases:'")
    return tests


def run_cases(
    tests: PolicyTestFile, *, policies: PolicyDocument | None, now: datetime
) -> Sequence[CaseResult]:
    """Decide every case against ``policies`` and compare with what it expects."""
    if tests.apps is not None:
        apps = [App(a.name, "http://test.invalid", labels=a.labels) for a in tests.apps]
    else:
        names = sorted({case.request.app for case in tests.cases})
        apps = [App(name, "http://test.invalid") for name in names]
    snapshot = compile_snapshot(version=1, apps=apps, rules=(), policies=policies)
    results: list[CaseResult] = []
    for case in tests.cases:
        request = case.request.to_request(now=now)
        decision = decide(request, snapshot, case.request.when(now), explain=True)
        problems = []
        if str(decision.effect) != case.expect:
            problems.append(f"expected {case.expect}, got {decision.effect}")
        if case.reason is not None and case.reason not in decision.reasons:
            problems.append(f"expected reason {case.reason}, got {', '.join(decision.reasons)}")
        if case.rule is not None and decision.rule_id != case.rule:
            problems.append(f"expected rule {case.rule}, got {decision.rule_id or 'none'}")
        results.append(CaseResult(case.name, not problems, decision, "; ".join(problems)))
    return results
