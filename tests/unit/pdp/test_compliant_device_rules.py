"""`apps allow --require-compliant-device`: the rule compiles to "allow the group" plus
"the group needs a compliant device", decided like any require-device rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nevertrust.domain import AccessRequest, AccessRule, App, DeviceState, Effect, Principal, Reason
from nevertrust.pdp import PolicySnapshot, compile_snapshot, decide, parse_policy_document

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
APPS = (App("wiki", "http://127.0.0.1:9001"), App("chat", "http://127.0.0.1:9002"))
RULES = (
    AccessRule("allow:wiki:eng", "wiki", "eng", require_compliant_device=True),
    AccessRule("allow:wiki:ops", "wiki", "ops"),
    AccessRule("allow:chat:eng", "chat", "eng"),
)
COMPLIANT = DeviceState("dev_a", compliant=True, managed=True, platform="linux")
NONCOMPLIANT = DeviceState("dev_b", compliant=False, managed=True, platform="linux")


@pytest.fixture(scope="module")
def snapshot() -> PolicySnapshot:
    return compile_snapshot(version=1, apps=APPS, rules=RULES)


def ask(app: str, *groups: str, device: DeviceState | None = None) -> AccessRequest:
    principal = Principal(user_id=1, name="alice", groups=frozenset(groups))
    return AccessRequest(principal=principal, app=app, device=device)


@pytest.mark.parametrize(
    ("request_", "effect", "reason"),
    [
        (ask("wiki", "eng", device=COMPLIANT), Effect.ALLOW, Reason.ALLOWED_BY_GROUP),
        (ask("wiki", "eng"), Effect.REQUIRE_DEVICE, Reason.DEVICE_UNKNOWN),
        (
            ask("wiki", "eng", device=NONCOMPLIANT),
            Effect.REQUIRE_DEVICE,
            Reason.DEVICE_NONCOMPLIANT,
        ),
        (ask("wiki", "ops"), Effect.ALLOW, Reason.ALLOWED_BY_GROUP),
        (ask("wiki", "eng", "ops"), Effect.REQUIRE_DEVICE, Reason.DEVICE_UNKNOWN),
        (ask("chat", "eng"), Effect.ALLOW, Reason.ALLOWED_BY_GROUP),
        (ask("wiki", "sales", device=COMPLIANT), Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP),
    ],
    ids=[
        "allow_member_with_compliant_device",
        "require_device_when_member_has_no_device",
        "require_device_when_members_device_is_noncompliant",
        "other_groups_rule_needs_no_device",
        "membership_of_a_looser_group_does_not_lift_the_requirement",
        "requirement_is_per_app",
        "a_compliant_device_does_not_make_a_non_member_allowed",
    ],
)
def test_compliant_device_rule_decisions(
    snapshot: PolicySnapshot, request_: AccessRequest, effect: Effect, reason: Reason
) -> None:
    decision = decide(request_, snapshot, NOW)
    assert (decision.effect, decision.reasons) == (effect, (reason,))
    if effect is Effect.REQUIRE_DEVICE:
        assert decision.rule_id == "allow:wiki:eng"


def test_the_flag_compiles_to_an_allow_and_a_require_device_rule(snapshot: PolicySnapshot) -> None:
    wiki = snapshot.apps["wiki"].enforced
    assert [r.rule_id for r in wiki.allow] == ["allow:wiki:eng", "allow:wiki:ops"]
    assert [r.rule_id for r in wiki.require_device] == ["allow:wiki:eng"]
    assert snapshot.apps["chat"].enforced.require_device == ()


def test_a_deny_policy_still_wins_over_a_compliant_device() -> None:
    policies = parse_policy_document(
        """
policies:
  - name: lockdown
    apps: [wiki]
    rules:
      - name: nobody
        effect: deny
        when: {}
""",
        file="p.yaml",
    )
    snapshot = compile_snapshot(version=1, apps=APPS, rules=RULES, policies=policies)
    decision = decide(ask("wiki", "eng", device=COMPLIANT), snapshot, NOW)
    assert decision.effect is Effect.DENY
