"""Decide one access request against a compiled snapshot. Default deny; fail closed.

Order (documented in docs/policy.md): a matching deny rule denies; without a matching
allow rule the request is denied; a matching require-device rule needs a known compliant
device; a matching step-up rule needs a recent strong sign-in; otherwise allow.

The hot path calls one composed predicate per rule and returns decisions built at
compile time. Near-miss traces (the first failed condition of each rule that did not
apply, in words) are built only when asked for with ``explain=True``: the gateway asks
on denials, for the 403 page and the audit record; what-if and policy tests always ask.
"""

from __future__ import annotations

import logging
from datetime import datetime

from nevertrust.domain import AccessRequest, Decision, Effect, Reason, RuleTrace
from nevertrust.pdp.conditions.auth import strong_method_within
from nevertrust.pdp.snapshot import CompiledRule, PolicySnapshot, RuleSet

__all__ = ["decide", "evaluate_ruleset", "trace_rules"]

_log = logging.getLogger("nevertrust.pdp")

_NO_RULE_FOR_APP = Decision.deny(Reason.NO_RULE_FOR_APP, detail="no rule allows anyone")
_NOT_IN_GROUP = Decision.deny(Reason.NOT_IN_ALLOWED_GROUP)
_NO_MATCH = Decision.deny(Reason.NO_MATCHING_RULE)
_USER_DISABLED = Decision.deny(Reason.USER_DISABLED)
_INTERNAL_ERROR = Decision.deny(Reason.INTERNAL_ERROR)


def _first_failure(rule: CompiledRule, request: AccessRequest, now: datetime) -> RuleTrace:
    for condition in rule.conditions:
        if not condition.test(request, now):
            return RuleTrace(
                rule.rule_id, rule.effect, False, condition.name, condition.explain(request, now)
            )
    return RuleTrace(rule.rule_id, rule.effect, True)


def trace_rules(
    rules: tuple[CompiledRule, ...], request: AccessRequest, now: datetime
) -> tuple[RuleTrace, ...]:
    """For each rule: did it apply, and if not, which condition failed first and why."""
    return tuple(_first_failure(rule, request, now) for rule in rules)


def _failed_only_on_groups(rule: CompiledRule, request: AccessRequest, now: datetime) -> bool:
    for condition in rule.conditions:
        if not condition.test(request, now):
            return condition.name == "groups"
    return False


def _default_deny(rules: RuleSet, request: AccessRequest, now: datetime, explain: bool) -> Decision:
    if not rules.allow:
        return _NO_RULE_FOR_APP
    groups_only = all(_failed_only_on_groups(rule, request, now) for rule in rules.allow)
    if not explain:
        return _NOT_IN_GROUP if groups_only else _NO_MATCH
    trace = trace_rules(rules.allow, request, now)
    return Decision.deny(
        Reason.NOT_IN_ALLOWED_GROUP if groups_only else Reason.NO_MATCHING_RULE,
        detail="; ".join(f"{t.rule_id}: {t.detail}" for t in trace[:5]),
        trace=trace,
    )


def evaluate_ruleset(
    rules: RuleSet, request: AccessRequest, now: datetime, *, explain: bool = False
) -> Decision:
    """The decision of one rule set (enforced, or enforced plus report-only)."""
    for rule in rules.deny:
        if rule.predicate(request, now):
            return rule.decision  # type: ignore[return-value]  # set for deny rules
    granted: CompiledRule | None = None
    for rule in rules.allow:
        if rule.predicate(request, now):
            granted = rule
            break
    if granted is None:
        return _default_deny(rules, request, now, explain)
    for rule in rules.require_device:
        if rule.predicate(request, now):
            device = request.device
            if device is None or not device.compliant:
                reason = Reason.DEVICE_UNKNOWN if device is None else Reason.DEVICE_NONCOMPLIANT
                return Decision.deny(
                    reason,
                    rule_id=rule.rule_id,
                    effect=Effect.REQUIRE_DEVICE,
                    detail=f"rule {rule.rule_id} requires a compliant device",
                )
    for rule in rules.step_up:
        need = rule.step_up
        if need is not None and rule.predicate(request, now):
            if not strong_method_within(request, need.methods, need.max_age_seconds, now):
                used = not need.methods.isdisjoint(request.auth_methods)
                return Decision.deny(
                    Reason.MFA_STALE if used else Reason.MFA_REQUIRED,
                    rule_id=rule.rule_id,
                    effect=Effect.STEP_UP,
                    step_up=need,
                    detail=(
                        f"rule {rule.rule_id} requires one of {sorted(need.methods)} "
                        f"within {need.max_age_seconds}s"
                    ),
                )
    return granted.decision  # type: ignore[return-value]  # set for allow rules


def _decide(
    request: AccessRequest, snapshot: PolicySnapshot, now: datetime, explain: bool
) -> Decision:
    if not request.principal.enabled:
        return _USER_DISABLED
    compiled = snapshot.apps.get(request.app)
    if compiled is None:
        return Decision.deny(Reason.UNKNOWN_APP, detail=f"no app named {request.app!r}")
    decision = evaluate_ruleset(compiled.enforced, request, now, explain=explain)
    if compiled.shadow is not None:
        shadow = evaluate_ruleset(compiled.shadow, request, now, explain=explain)
        if shadow.effect is not decision.effect:
            return decision.with_shadow(shadow)
    return decision


def decide(
    request: AccessRequest, snapshot: PolicySnapshot, now: datetime, *, explain: bool = False
) -> Decision:
    """Return the decision for ``request`` at ``now``. Any error while evaluating denies.

    With ``explain``, denials carry the near-miss trace of every allow rule.
    """
    try:
        return _decide(request, snapshot, now, explain)
    except Exception:  # noqa: BLE001 - the PDP guard: any failure denies
        _log.exception("decision_failed")
        return _INTERNAL_ERROR
