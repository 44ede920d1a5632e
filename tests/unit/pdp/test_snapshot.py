from __future__ import annotations

import dataclasses

import pytest

from nevertrust.domain import AccessRule, App, StepUp
from nevertrust.pdp import PolicySnapshot, RuleSet, compile_snapshot, parse_policy_document

WHOAMI = App(name="whoami", upstream="http://a")
WIKI = App(name="wiki", upstream="http://b", labels={"tier": "prod"})
GRAFANA = App(name="grafana", upstream="http://c", labels={"tier": "prod", "team": "ops"})


def allow_ids(snap: PolicySnapshot, app: str) -> list[str]:
    return [rule.rule_id for rule in snap.apps[app].enforced.allow]


def test_compiles_group_rules_per_app() -> None:
    snap = compile_snapshot(
        version=3,
        apps=[WHOAMI, WIKI],
        rules=[
            AccessRule(rule_id="r1", app="whoami", group="eng"),
            AccessRule(rule_id="r2", app="wiki", group="eng"),
            AccessRule(rule_id="r3", app="wiki", group="ops"),
        ],
    )
    assert snap.version == 3
    assert set(snap.apps) == {"whoami", "wiki"}
    assert allow_ids(snap, "whoami") == ["r1"]
    assert allow_ids(snap, "wiki") == ["r2", "r3"]
    assert snap.apps["whoami"].app.upstream == "http://a"
    rule = snap.apps["whoami"].enforced.allow[0]
    assert rule.group_rule and rule.effect == "allow"
    assert [c.name for c in rule.conditions] == ["groups"]


def test_group_rules_keep_their_stored_order() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[WHOAMI],
        rules=[
            AccessRule(rule_id="first", app="whoami", group="eng"),
            AccessRule(rule_id="second", app="whoami", group="eng"),
        ],
    )
    assert allow_ids(snap, "whoami") == ["first", "second"]


def test_rules_for_apps_that_do_not_exist_are_ignored() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[WHOAMI],
        rules=[AccessRule(rule_id="r1", app="ghost", group="eng")],
    )
    assert set(snap.apps) == {"whoami"}
    assert snap.app("ghost") is None
    assert snap.apps["whoami"].enforced == RuleSet()
    assert snap.apps["whoami"].enforced.empty


def test_app_lookup_returns_compiled_app_or_none() -> None:
    snap = compile_snapshot(version=1, apps=[WHOAMI], rules=[])
    found = snap.app("whoami")
    assert found is not None and found.app.name == "whoami"
    assert snap.app("nope") is None


def test_accepts_one_shot_iterables() -> None:
    apps = (a for a in [WHOAMI])
    rules = (r for r in [AccessRule(rule_id="r1", app="whoami", group="eng")])
    snap = compile_snapshot(version=1, apps=apps, rules=rules)
    assert allow_ids(snap, "whoami") == ["r1"]


def test_snapshot_cannot_be_changed_after_compilation() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[WHOAMI],
        rules=[AccessRule(rule_id="r1", app="whoami", group="eng")],
    )
    with pytest.raises(TypeError):
        snap.apps["evil"] = snap.apps["whoami"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.apps["whoami"].enforced = RuleSet()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.apps["whoami"].enforced.allow = ()  # type: ignore[misc]
    assert isinstance(snap.apps["whoami"].enforced.allow, tuple)
    with pytest.raises(AttributeError):
        snap.version = 2  # type: ignore[misc]


POLICIES = """\
policies:
  - name: by-name
    apps: [whoami, ghost]
    rules:
      - {name: eng, effect: allow, when: {groups: [eng]}}
      - {name: no-contractors, effect: deny, when: {groups: [contractors]}}
  - name: by-label
    app_labels: {tier: prod}
    rules:
      - {name: device, effect: require-device}
      - name: mfa
        effect: step-up
        step_up: {methods: [webauthn], max_age: 5m}
      - {name: mfa-default, effect: step-up}
  - name: everywhere
    mode: report-only
    apps: ["*"]
    rules:
      - {name: lockdown, effect: deny}
  - name: legacy
    mode: disabled
    apps: ["*"]
    rules:
      - {name: everyone, effect: allow}
"""


@pytest.fixture(scope="module")
def compiled() -> PolicySnapshot:
    document = parse_policy_document(POLICIES, file="policies.yaml")
    return compile_snapshot(
        version=1,
        apps=[WHOAMI, WIKI, GRAFANA],
        rules=[AccessRule("allow:wiki:eng", "wiki", "eng")],
        policies=document,
    )


def test_policy_rules_are_split_by_effect_under_the_apps_they_name(
    compiled: PolicySnapshot,
) -> None:
    enforced = compiled.apps["whoami"].enforced
    assert [r.rule_id for r in enforced.allow] == ["by-name/eng"]
    assert [r.rule_id for r in enforced.deny] == ["by-name/no-contractors"]
    assert enforced.require_device == () and enforced.step_up == ()


def test_label_targets_select_apps_carrying_every_label(compiled: PolicySnapshot) -> None:
    for app in ("wiki", "grafana"):
        enforced = compiled.apps[app].enforced
        assert [r.rule_id for r in enforced.require_device] == ["by-label/device"]
        assert [r.rule_id for r in enforced.step_up] == ["by-label/mfa", "by-label/mfa-default"]
    assert compiled.apps["whoami"].enforced.step_up == ()


def test_group_rules_come_before_policy_rules(compiled: PolicySnapshot) -> None:
    assert allow_ids(compiled, "wiki") == ["allow:wiki:eng"]


def test_step_up_carries_its_methods_and_age_or_the_defaults(compiled: PolicySnapshot) -> None:
    written, default = compiled.apps["wiki"].enforced.step_up
    assert written.step_up == StepUp(frozenset({"webauthn"}), 300)
    assert default.step_up == StepUp(frozenset({"otp", "webauthn"}), 900)


def test_report_only_rules_live_only_in_the_shadow_set(compiled: PolicySnapshot) -> None:
    for name in ("whoami", "wiki", "grafana"):
        app = compiled.apps[name]
        assert "everywhere/lockdown" not in [r.rule_id for r in app.enforced.deny]
        assert app.shadow is not None
        assert app.shadow.deny[-1].rule_id == "everywhere/lockdown"
        # The shadow is what would be decided with report-only enforced: both sets.
        assert app.shadow.allow == app.enforced.allow


def test_disabled_policies_are_left_out_entirely(compiled: PolicySnapshot) -> None:
    for app in compiled.apps.values():
        ids = [r.rule_id for rs in (app.enforced, app.shadow) if rs for r in rs.allow]
        assert not any(i.startswith("legacy/") for i in ids)


def test_no_shadow_set_without_report_only_policies() -> None:
    document = parse_policy_document(
        "policies:\n  - {name: p, apps: ['*'], rules: [{name: r, effect: allow}]}\n", file="p"
    )
    snap = compile_snapshot(version=1, apps=[WHOAMI], rules=[], policies=document)
    assert snap.apps["whoami"].shadow is None


def test_naming_an_app_that_does_not_exist_is_a_warning(compiled: PolicySnapshot) -> None:
    assert compiled.warnings == ("policy 'by-name' names app 'ghost', which does not exist",)
    assert compiled.app("ghost") is None
