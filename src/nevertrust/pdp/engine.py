"""Decide one access request against a compiled snapshot. Default deny; fail closed.

Order (documented in docs/policy.md): a matching deny rule denies; without a matching
allow rule the request is denied; a matching require-device rule needs a known compliant
device; a matching step-up rule needs a recent strong sign-in; otherwise allow.
Traces of near misses (the first failed condition of each rule that did not apply) are
built only on denials, so the allow path stays cheap.
"""

from __future__ import annotations

import logging
from datetime import datetime

from nevertrust.domain import AccessRequest, Decision, Effect, Reason, RuleTrace
from nevertrust.pdp.conditions.auth import strong_method_within
from nevertrust.pdp.snapshot import CompiledRule, PolicySnapshot, RuleSet

__all__ = ["decide", "evaluate_ruleset"]

_log = logging.getLogger("nevertrust.pdp")


def _matches(rule: CompiledRule, request: AccessRequest, now: datetime) -> bool:
    for condition in rule.conditions:
        if not condition.test(request, now):
            return False
    return True


def _trace(rule: CompiledRule, request: AccessRequest, now: datetime) -> RuleTrace:
    for condition in rule.conditions:
        if not condition.test(request, now):
            return RuleTrace(
                rule.rule_id, rule.effect, False, condition.name, condition.explain(request, now)
            )
    return RuleTrace(rule.rule_id, rule.effect, True)


def evaluate_ruleset(rules: RuleSet, request: AccessRequest, now: datetime) -> Decision:
    """The decision of one rule set (enforced, or enforced plus report-only)."""
    for rule in rules.deny:
        if _matches(rule, request, now):
            return Decision.deny(
                Reason.DENIED_BY_RULE,
                rule_id=rule.rule_id,
                detail=f"rule {rule.rule_id} denies",
                trace=(RuleTrace(rule.rule_id, rule.effect, True),),
            )
    granted: CompiledRule | None = None
    for rule in rules.allow:
        if _matches(rule, request, now):
            granted = rule
            break
    if granted is None:
        trace = tuple(_trace(rule, request, now) for rule in rules.allow)
        if not trace:
            return Decision.deny(Reason.NO_RULE_FOR_APP, detail="no rule allows anyone")
        reason = (
            Reason.NOT_IN_ALLOWED_GROUP
            if all(t.failed_condition == "groups" for t in trace)
            else Reason.NO_MATCHING_RULE
        )
        detail = "; ".join(f"{t.rule_id}: {t.detail}" for t in trace[:5])
        return Decision.deny(reason, detail=detail, trace=trace)
    for rule in rules.require_device:
        if _matches(rule, request, now):
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
        if need is not None and _matches(rule, request, now):
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
    reason = Reason.ALLOWED_BY_GROUP if granted.group_rule else Reason.ALLOWED_BY_RULE
    return Decision.allow(reason, rule_id=granted.rule_id, detail=f"rule {granted.rule_id}")


def _decide(request: AccessRequest, snapshot: PolicySnapshot, now: datetime) -> Decision:
    principal = request.principal
    if not principal.enabled:
        return Decision.deny(Reason.USER_DISABLED)
    compiled = snapshot.apps.get(request.app)
    if compiled is None:
        return Decision.deny(Reason.UNKNOWN_APP, detail=f"no app named {request.app!r}")
    decision = evaluate_ruleset(compiled.enforced, request, now)
    if compiled.shadow is not None:
        shadow = evaluate_ruleset(compiled.shadow, request, now)
        if shadow.effect is not decision.effect:
            return decision.with_shadow(shadow)
    return decision


def decide(request: AccessRequest, snapshot: PolicySnapshot, now: datetime) -> Decision:
    """Return the decision for ``request`` at ``now``. Any error while evaluating denies."""
    try:
        return _decide(request, snapshot, now)
    except Exception:  # noqa: BLE001 - the PDP guard: any failure denies
        _log.exception("decision_failed")
        return Decision.deny(Reason.INTERNAL_ERROR)
