"""The decision order of the policy language, one documented rule per row.

Each row is also decided by the reference interpreter, so the table pins both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nevertrust.domain import (
    AccessRequest,
    AccessRule,
    App,
    Decision,
    DeviceState,
    Effect,
    Principal,
    Reason,
    StepUp,
)
from nevertrust.pdp import compile_snapshot, decide, parse_policy_document
from nevertrust.pdp.reference import reference_decide

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
APPS = (
    App("wiki", "http://wiki", labels={"tier": "prod"}),
    App("grafana", "http://grafana", labels={"tier": "prod", "team": "ops"}),
    App("blog", "http://blog"),
)
COMPLIANT = DeviceState("d-1", compliant=True)
NONCOMPLIANT = DeviceState("d-2", compliant=False)


def ask(
    app: str = "wiki",
    *groups: str,
    name: str = "alice",
    enabled: bool = True,
    **fields: Any,
) -> AccessRequest:
    who = Principal(user_id=1, name=name, groups=frozenset(groups), enabled=enabled)
    return AccessRequest(principal=who, app=app, **fields)


def signed_in(*methods: str, ago: int) -> dict[str, Any]:
    return {"auth_methods": frozenset(methods), "auth_time": NOW - timedelta(seconds=ago)}


ENG_ALLOWED = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
"""
DENY_OVERRIDES = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
      - {name: no-contractors, effect: deny, when: {groups: [contractors]}}
"""
DENY_IN_ANOTHER_POLICY = """
policies:
  - name: lockdown
    apps: ["*"]
    rules:
      - {name: blocked-users, effect: deny, when: {users: [mallory]}}
  - name: p
    apps: [wiki]
    rules:
      - {name: everyone, effect: allow}
"""
TWO_ALLOWS = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
      - {name: bob, effect: allow, when: {users: [bob]}}
"""
GROUP_FIRST = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
      - {name: ops-inside, effect: allow, when: {groups: [ops], source: {cidr: [10.0.0.0/8]}}}
"""
ONLY_DENIES = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: nobody, effect: deny, when: {groups: [contractors]}}
"""
REPORT_ONLY_DENY = (
    ENG_ALLOWED
    + """
  - name: future
    mode: report-only
    apps: [wiki]
    rules:
      - {name: mfa-everywhere, effect: deny, when: {auth_methods: [pwd]}}
"""
)
REPORT_ONLY_ALLOW = (
    ENG_ALLOWED
    + """
  - name: future
    mode: report-only
    apps: [wiki]
    rules:
      - {name: sales-too, effect: allow, when: {groups: [sales]}}
"""
)
DISABLED = (
    ENG_ALLOWED
    + """
  - name: parked
    mode: disabled
    apps: ["*"]
    rules:
      - {name: nobody, effect: deny}
      - {name: everybody, effect: allow}
"""
)
BY_LABEL = """
policies:
  - name: prod
    app_labels: {tier: prod}
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
"""
BY_TWO_LABELS = """
policies:
  - name: ops
    app_labels: {tier: prod, team: ops}
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
"""
EVERY_APP = """
policies:
  - name: all
    apps: ["*"]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
"""
NAMES_OR_LABELS = """
policies:
  - name: mixed
    apps: [blog]
    app_labels: {team: ops}
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
"""
DEVICE = (
    ENG_ALLOWED
    + """
  - name: devices
    apps: [wiki]
    rules:
      - {name: laptops, effect: require-device, when: {http: {paths: ["/admin/*"]}}}
"""
)
STEP_UP = (
    ENG_ALLOWED
    + """
  - name: mfa
    apps: [wiki]
    rules:
      - name: admin
        effect: step-up
        step_up: {methods: [webauthn], max_age: 5m}
        when: {http: {paths: ["/admin/*"]}}
"""
)
STEP_UP_DEFAULTS = (
    ENG_ALLOWED
    + """
  - name: mfa
    apps: [wiki]
    rules:
      - {name: always, effect: step-up}
"""
)
DEVICE_AND_STEP_UP = (
    ENG_ALLOWED
    + """
  - name: both
    apps: [wiki]
    rules:
      - {name: mfa, effect: step-up}
      - {name: laptops, effect: require-device}
"""
)
UNKNOWN_DEVICE_CONDITION = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: compliant, effect: allow, when: {device: {compliant: true}}}
"""
CONTRACTORS_DENIED = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: no-contractors, effect: deny, when: {groups: [contractors]}}
      - {name: ops, effect: allow, when: {groups: [ops]}}
"""
GROUP_RULES = (AccessRule("allow:wiki:eng", "wiki", "eng"),)


@dataclass(frozen=True)
class Row:
    policies: str
    request: AccessRequest
    effect: Effect
    reason: Reason
    rule_id: str | None = None
    group_rules: tuple[AccessRule, ...] = ()
    shadow: tuple[Effect, Reason] | None = None


ROWS: dict[str, Row] = {
    # Deny overrides: a matching deny wins over any allow, in any policy.
    "deny_overrides_a_matching_allow": Row(
        DENY_OVERRIDES,
        ask("wiki", "eng", "contractors"),
        Effect.DENY,
        Reason.DENIED_BY_RULE,
        "p/no-contractors",
    ),
    "allow_when_the_deny_does_not_match": Row(
        DENY_OVERRIDES, ask("wiki", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "p/eng"
    ),
    "deny_overrides_across_policies": Row(
        DENY_IN_ANOTHER_POLICY,
        ask("wiki", name="mallory"),
        Effect.DENY,
        Reason.DENIED_BY_RULE,
        "lockdown/blocked-users",
    ),
    # Default deny.
    "deny_when_no_allow_rule_matches": Row(
        TWO_ALLOWS, ask("wiki", "sales"), Effect.DENY, Reason.NO_MATCHING_RULE
    ),
    "deny_as_not_in_group_when_every_allow_fails_first_on_groups": Row(
        GROUP_FIRST,
        ask("wiki", "sales", source_ip="10.1.1.1"),
        Effect.DENY,
        Reason.NOT_IN_ALLOWED_GROUP,
    ),
    "deny_as_no_matching_rule_when_a_group_matches_but_another_condition_fails": Row(
        GROUP_FIRST,
        ask("wiki", "ops", source_ip="8.8.8.8"),
        Effect.DENY,
        Reason.NO_MATCHING_RULE,
    ),
    "deny_when_the_app_has_only_deny_rules": Row(
        ONLY_DENIES, ask("wiki", "eng"), Effect.DENY, Reason.NO_RULE_FOR_APP
    ),
    "deny_when_no_policy_targets_the_app": Row(
        ENG_ALLOWED, ask("blog", "eng"), Effect.DENY, Reason.NO_RULE_FOR_APP
    ),
    "deny_when_a_condition_is_about_an_unknown_attribute": Row(
        UNKNOWN_DEVICE_CONDITION, ask("wiki"), Effect.DENY, Reason.NO_MATCHING_RULE
    ),
    "deny_a_disabled_user_before_anything_else": Row(
        ENG_ALLOWED, ask("wiki", "eng", enabled=False), Effect.DENY, Reason.USER_DISABLED
    ),
    "deny_an_unknown_app": Row(ENG_ALLOWED, ask("ghost", "eng"), Effect.DENY, Reason.UNKNOWN_APP),
    # Report-only: never enforced, reported when it would decide otherwise.
    "report_only_deny_is_not_enforced_but_shadowed": Row(
        REPORT_ONLY_DENY,
        ask("wiki", "eng", auth_methods=frozenset({"pwd"})),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/eng",
        shadow=(Effect.DENY, Reason.DENIED_BY_RULE),
    ),
    "report_only_allow_does_not_grant_but_is_shadowed": Row(
        REPORT_ONLY_ALLOW,
        ask("wiki", "sales"),
        Effect.DENY,
        Reason.NOT_IN_ALLOWED_GROUP,
        shadow=(Effect.ALLOW, Reason.ALLOWED_BY_RULE),
    ),
    "report_only_that_agrees_leaves_no_shadow": Row(
        REPORT_ONLY_DENY,
        ask("wiki", "eng", auth_methods=frozenset({"webauthn"})),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/eng",
    ),
    # Disabled policies are ignored entirely.
    "disabled_policies_neither_deny_nor_allow": Row(
        DISABLED, ask("wiki", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "p/eng"
    ),
    "disabled_allow_grants_nothing": Row(
        DISABLED, ask("blog", "eng"), Effect.DENY, Reason.NO_RULE_FOR_APP
    ),
    # Targets.
    "labels_target_apps_carrying_them": Row(
        BY_LABEL, ask("wiki", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "prod/eng"
    ),
    "labels_skip_apps_without_them": Row(
        BY_LABEL, ask("blog", "eng"), Effect.DENY, Reason.NO_RULE_FOR_APP
    ),
    "labels_need_every_label": Row(
        BY_TWO_LABELS, ask("wiki", "eng"), Effect.DENY, Reason.NO_RULE_FOR_APP
    ),
    "labels_match_when_all_are_carried": Row(
        BY_TWO_LABELS, ask("grafana", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "ops/eng"
    ),
    "star_targets_every_app": Row(
        EVERY_APP, ask("blog", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "all/eng"
    ),
    "names_and_labels_together_target_either": Row(
        NAMES_OR_LABELS, ask("grafana", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "mixed/eng"
    ),
    "names_and_labels_together_still_target_the_named_app": Row(
        NAMES_OR_LABELS, ask("blog", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "mixed/eng"
    ),
    # Require a device.
    "require_device_when_the_device_is_unknown": Row(
        DEVICE,
        ask("wiki", "eng", path="/admin/x"),
        Effect.REQUIRE_DEVICE,
        Reason.DEVICE_UNKNOWN,
        "devices/laptops",
    ),
    "require_device_when_the_device_is_noncompliant": Row(
        DEVICE,
        ask("wiki", "eng", path="/admin/x", device=NONCOMPLIANT),
        Effect.REQUIRE_DEVICE,
        Reason.DEVICE_NONCOMPLIANT,
        "devices/laptops",
    ),
    "allow_from_a_compliant_device": Row(
        DEVICE,
        ask("wiki", "eng", path="/admin/x", device=COMPLIANT),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/eng",
    ),
    "no_device_needed_where_the_rule_does_not_apply": Row(
        DEVICE, ask("wiki", "eng", path="/docs"), Effect.ALLOW, Reason.ALLOWED_BY_RULE, "p/eng"
    ),
    "require_device_only_after_access_is_granted": Row(
        DEVICE, ask("wiki", "sales", path="/admin/x"), Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP
    ),
    # Step up.
    "step_up_when_no_listed_method_was_used": Row(
        STEP_UP,
        ask("wiki", "eng", path="/admin/", **signed_in("pwd", "otp", ago=10)),
        Effect.STEP_UP,
        Reason.MFA_REQUIRED,
        "mfa/admin",
    ),
    "step_up_when_the_strong_sign_in_is_stale": Row(
        STEP_UP,
        ask("wiki", "eng", path="/admin/", **signed_in("webauthn", ago=301)),
        Effect.STEP_UP,
        Reason.MFA_STALE,
        "mfa/admin",
    ),
    "allow_after_a_fresh_strong_sign_in": Row(
        STEP_UP,
        ask("wiki", "eng", path="/admin/", **signed_in("webauthn", ago=300)),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/eng",
    ),
    "step_up_defaults_to_otp_or_webauthn_within_15_minutes": Row(
        STEP_UP_DEFAULTS,
        ask("wiki", "eng", **signed_in("otp", ago=901)),
        Effect.STEP_UP,
        Reason.MFA_STALE,
        "mfa/always",
    ),
    "step_up_defaults_are_met_by_a_recent_otp": Row(
        STEP_UP_DEFAULTS,
        ask("wiki", "eng", **signed_in("otp", ago=900)),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/eng",
    ),
    "require_device_comes_before_step_up": Row(
        DEVICE_AND_STEP_UP,
        ask("wiki", "eng"),
        Effect.REQUIRE_DEVICE,
        Reason.DEVICE_UNKNOWN,
        "both/laptops",
    ),
    "step_up_once_the_device_is_fine": Row(
        DEVICE_AND_STEP_UP,
        ask("wiki", "eng", device=COMPLIANT),
        Effect.STEP_UP,
        Reason.MFA_REQUIRED,
        "both/mfa",
    ),
    # `apps allow` group rules next to policies.
    "group_rule_allows_as_before": Row(
        CONTRACTORS_DENIED,
        ask("wiki", "eng"),
        Effect.ALLOW,
        Reason.ALLOWED_BY_GROUP,
        "allow:wiki:eng",
        GROUP_RULES,
    ),
    "policy_deny_overrides_a_group_rule": Row(
        CONTRACTORS_DENIED,
        ask("wiki", "eng", "contractors"),
        Effect.DENY,
        Reason.DENIED_BY_RULE,
        "p/no-contractors",
        GROUP_RULES,
    ),
    "policy_allow_sits_beside_group_rules": Row(
        CONTRACTORS_DENIED,
        ask("wiki", "ops"),
        Effect.ALLOW,
        Reason.ALLOWED_BY_RULE,
        "p/ops",
        GROUP_RULES,
    ),
    "group_rules_are_tried_first": Row(
        CONTRACTORS_DENIED,
        ask("wiki", "ops", "eng"),
        Effect.ALLOW,
        Reason.ALLOWED_BY_GROUP,
        "allow:wiki:eng",
        GROUP_RULES,
    ),
    "not_in_group_counts_group_rules_and_policy_rules_alike": Row(
        CONTRACTORS_DENIED,
        ask("wiki", "sales"),
        Effect.DENY,
        Reason.NOT_IN_ALLOWED_GROUP,
        None,
        GROUP_RULES,
    ),
    "group_rules_alone_on_an_app_without_policies": Row(
        "policies: []\n",
        ask("wiki", "eng"),
        Effect.ALLOW,
        Reason.ALLOWED_BY_GROUP,
        "allow:wiki:eng",
        GROUP_RULES,
    ),
}


def _decide(row: Row, *, explain: bool = False) -> Decision:
    document = parse_policy_document(row.policies, file="policies.yaml")
    snapshot = compile_snapshot(version=1, apps=APPS, rules=row.group_rules, policies=document)
    return decide(row.request, snapshot, NOW, explain=explain)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_decision_order(row: Row) -> None:
    decision = _decide(row)
    assert (decision.effect, decision.reasons) == (row.effect, (row.reason,))
    assert decision.rule_id == row.rule_id
    if row.shadow is None:
        assert decision.shadow is None
    else:
        assert decision.shadow is not None
        assert (decision.shadow.effect, decision.shadow.reasons[0]) == row.shadow


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_reference_interpreter_agrees(row: Row) -> None:
    document = parse_policy_document(row.policies, file="policies.yaml")
    args = {"apps": APPS, "rules": row.group_rules, "policies": document, "now": NOW}
    assert reference_decide(row.request, **args) == (row.effect, row.reason)
    if row.shadow is not None:
        assert reference_decide(row.request, **args, report_only=True) == row.shadow


def test_report_only_shadow_names_the_rule_that_would_decide() -> None:
    decision = _decide(ROWS["report_only_deny_is_not_enforced_but_shadowed"])
    assert decision.allowed
    assert decision.shadow is not None and decision.shadow.rule_id == "future/mfa-everywhere"


def test_step_up_says_what_it_needs() -> None:
    decision = _decide(ROWS["step_up_when_the_strong_sign_in_is_stale"])
    assert decision.step_up == StepUp(frozenset({"webauthn"}), 300)
    assert "requires one of ['webauthn'] within 300s" in decision.detail


NEAR_MISSES = """
policies:
  - name: p
    apps: [wiki]
    rules:
      - {name: ops, effect: allow, when: {groups: [ops]}}
      - name: office
        effect: allow
        when: {groups: [sales], source: {cidr: [10.0.0.0/8]}, time: {hours: "08:00-18:00"}}
      - {name: bob, effect: allow, when: {users: [bob], groups: [sales]}}
      - {name: no-interns, effect: deny, when: {groups: [interns]}}
"""


def test_trace_names_the_first_failed_condition_of_each_near_miss() -> None:
    row = Row(
        NEAR_MISSES,
        ask("wiki", "sales", source_ip="8.8.8.8"),
        Effect.DENY,
        Reason.NO_MATCHING_RULE,
        group_rules=GROUP_RULES,
    )
    decision = _decide(row, explain=True)
    assert decision.reasons == (Reason.NO_MATCHING_RULE,)
    assert [(t.rule_id, t.matched, t.failed_condition) for t in decision.trace] == [
        ("allow:wiki:eng", False, "groups"),
        ("p/ops", False, "groups"),
        ("p/office", False, "source.cidr"),  # groups held; the source did not
        ("p/bob", False, "users"),
    ]
    office = decision.trace[2]
    assert office.effect == "allow"
    assert office.detail == "needs a source in ['10.0.0.0/8']; came from 8.8.8.8"
    assert decision.detail.startswith("allow:wiki:eng: needs a member of ['eng']")


def test_trace_is_left_out_unless_explaining() -> None:
    row = Row(NEAR_MISSES, ask("wiki", "sales"), Effect.DENY, Reason.NO_MATCHING_RULE)
    assert _decide(row).trace == ()
    assert len(_decide(row, explain=True).trace) == 3
