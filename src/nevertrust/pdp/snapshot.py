"""An immutable, compiled view of apps and rules, rebuilt whole on every change.

Rules are indexed by app and split by effect, so a decision looks at the rules of one app
only: cost does not grow with rules for other apps. Report-only rules are kept apart and
evaluated only to report what they would change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from nevertrust.domain import AccessRequest, AccessRule, App, Decision, Reason, StepUp
from nevertrust.pdp.conditions import Condition, build_conditions
from nevertrust.pdp.conditions.identity import groups as groups_condition
from nevertrust.pdp.language import Policy, PolicyDocument

__all__ = [
    "CompiledApp",
    "CompiledRule",
    "PolicySnapshot",
    "RuleSet",
    "compile_snapshot",
    "compose",
]


Predicate = Callable[[AccessRequest, datetime], bool]


def _always(_request: AccessRequest, _now: datetime) -> bool:
    return True


def compose(conditions: tuple[Condition, ...]) -> Predicate:
    """One predicate for a rule: the conditions' tests chained with ``and``.

    Composed once per snapshot, so deciding costs one call per rule, not a loop.
    """
    tests = [c.test for c in conditions]
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda r, n: a(r, n) and b(r, n)
    if len(tests) == 3:
        a, b, c = tests
        return lambda r, n: a(r, n) and b(r, n) and c(r, n)
    frozen = tuple(tests)
    return lambda r, n: all(t(r, n) for t in frozen)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str  # "policy/rule", or "allow:app:group" for `apps allow` rules (both halves)
    effect: str  # allow | deny | step-up | require-device
    conditions: tuple[Condition, ...]
    step_up: StepUp | None = None
    group_rule: bool = False  # from `apps allow`: explained as group membership
    # Derived once at compile time: the composed test, and the decision an allow or deny
    # rule returns (built once, shared by every request it decides).
    predicate: Predicate = field(default=_always, compare=False)
    decision: Decision | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "predicate", compose(self.conditions))
        if self.effect == "allow":
            reason = Reason.ALLOWED_BY_GROUP if self.group_rule else Reason.ALLOWED_BY_RULE
            decision = Decision.allow(reason, rule_id=self.rule_id, detail=f"rule {self.rule_id}")
            object.__setattr__(self, "decision", decision)
        elif self.effect == "deny":
            decision = Decision.deny(
                Reason.DENIED_BY_RULE, rule_id=self.rule_id, detail=f"rule {self.rule_id} denies"
            )
            object.__setattr__(self, "decision", decision)


@dataclass(frozen=True, slots=True)
class RuleSet:
    deny: tuple[CompiledRule, ...] = ()
    allow: tuple[CompiledRule, ...] = ()
    require_device: tuple[CompiledRule, ...] = ()
    step_up: tuple[CompiledRule, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.deny or self.allow or self.require_device or self.step_up)

    def merged(self, other: RuleSet) -> RuleSet:
        return RuleSet(
            self.deny + other.deny,
            self.allow + other.allow,
            self.require_device + other.require_device,
            self.step_up + other.step_up,
        )


@dataclass(frozen=True, slots=True)
class CompiledApp:
    app: App
    enforced: RuleSet
    # Enforced plus report-only rules: what would be decided if report-only were enforced.
    shadow: RuleSet | None = None


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    version: int
    apps: Mapping[str, CompiledApp]
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def app(self, name: str) -> CompiledApp | None:
        return self.apps.get(name)


def _targets(policy: Policy, apps: list[App]) -> list[App]:
    names = set(policy.apps or [])
    every = "*" in names
    labels = policy.app_labels or {}
    chosen = []
    for app in apps:
        by_name = every or app.name in names
        by_label = bool(labels) and all(app.labels.get(k) == v for k, v in labels.items())
        if by_name or by_label:
            chosen.append(app)
    return chosen


ConditionCache = dict[str, tuple[Condition, ...]]


def _compile_rule(policy: Policy, index: int, cache: ConditionCache) -> CompiledRule:
    rule = policy.rules[index]
    # Identical `when` blocks share one set of compiled conditions: less memory, so
    # large rule sets stay in the CPU caches.
    key = rule.when.model_dump_json()
    conditions = cache.get(key)
    if conditions is None:
        conditions = cache[key] = build_conditions(rule.when)
    step_up = None
    if rule.effect == "step-up":
        spec = rule.step_up
        step_up = (
            StepUp(frozenset(spec.methods), spec.max_age_seconds)
            if spec is not None
            else StepUp(frozenset({"otp", "webauthn"}), 15 * 60)
        )
    return CompiledRule(
        rule_id=f"{policy.name}/{rule.name}",
        effect=rule.effect,
        conditions=conditions,
        step_up=step_up,
    )


def _add(buckets: dict[str, list[CompiledRule]], rule: CompiledRule) -> None:
    buckets[rule.effect].append(rule)


def _ruleset(buckets: dict[str, list[CompiledRule]]) -> RuleSet:
    return RuleSet(
        deny=tuple(buckets["deny"]),
        allow=tuple(buckets["allow"]),
        require_device=tuple(buckets["require-device"]),
        step_up=tuple(buckets["step-up"]),
    )


def _empty_buckets() -> dict[str, list[CompiledRule]]:
    return {"deny": [], "allow": [], "require-device": [], "step-up": []}


def compile_snapshot(
    *,
    version: int,
    apps: Iterable[App],
    rules: Iterable[AccessRule],
    policies: PolicyDocument | None = None,
) -> PolicySnapshot:
    """Index rules by app. Rules naming apps that do not exist are left out (with a warning)."""
    app_list = list(apps)
    known = {app.name for app in app_list}
    enforced: dict[str, dict[str, list[CompiledRule]]] = {
        a.name: _empty_buckets() for a in app_list
    }
    report: dict[str, dict[str, list[CompiledRule]]] = {a.name: _empty_buckets() for a in app_list}
    warnings: list[str] = []
    cache: ConditionCache = {}
    for rule in rules:
        if rule.app in enforced:
            key = f"group:{rule.group}"
            conditions = cache.get(key)
            if conditions is None:
                conditions = cache[key] = (groups_condition(frozenset({rule.group})),)
            _add(enforced[rule.app], CompiledRule(rule.rule_id, "allow", conditions, None, True))
            if rule.require_compliant_device:
                # `apps allow --require-compliant-device`: the group's members also need a
                # compliant device, even when another rule would let them in without one.
                _add(enforced[rule.app], CompiledRule(rule.rule_id, "require-device", conditions))
    for policy in policies.policies if policies else []:
        if policy.mode == "disabled":
            continue
        for name in policy.apps or []:
            if name != "*" and name not in known:
                warnings.append(f"policy {policy.name!r} names app {name!r}, which does not exist")
        targets = _targets(policy, app_list)
        compiled = [_compile_rule(policy, i, cache) for i in range(len(policy.rules))]
        destination = enforced if policy.mode == "enforce" else report
        for app in targets:
            for rule_compiled in compiled:
                _add(destination[app.name], rule_compiled)
    result: dict[str, CompiledApp] = {}
    for app in app_list:
        enforced_set = _ruleset(enforced[app.name])
        report_set = _ruleset(report[app.name])
        shadow = None if report_set.empty else enforced_set.merged(report_set)
        result[app.name] = CompiledApp(app=app, enforced=enforced_set, shadow=shadow)
    return PolicySnapshot(version=version, apps=MappingProxyType(result), warnings=tuple(warnings))
