from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.domain import AccessRequest, AccessRule, App, Decision, Effect, Principal, Reason
from nevertrust.pdp import PolicySnapshot, compile_snapshot, decide
from nevertrust.pdp.snapshot import CompiledApp

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

APPS = (
    App(name="whoami", upstream="http://127.0.0.1:9001"),
    App(name="wiki", upstream="http://127.0.0.1:9002"),
    App(name="empty", upstream="http://127.0.0.1:9003"),
)
RULES = (
    AccessRule(rule_id="r-eng-whoami", app="whoami", group="engineering"),
    AccessRule(rule_id="r-ops-whoami", app="whoami", group="ops"),
    AccessRule(rule_id="r-all-wiki", app="wiki", group="everyone"),
)


@pytest.fixture(scope="module")
def snapshot() -> PolicySnapshot:
    return compile_snapshot(version=7, apps=APPS, rules=RULES)


def principal(*groups: str, enabled: bool = True) -> Principal:
    return Principal(user_id=1, name="alice", groups=frozenset(groups), enabled=enabled)


@pytest.mark.parametrize(
    ("who", "app", "effect", "reason", "rule_id"),
    [
        (principal("engineering"), "whoami", Effect.ALLOW, Reason.ALLOWED_BY_GROUP, "r-eng-whoami"),
        (principal("ops"), "whoami", Effect.ALLOW, Reason.ALLOWED_BY_GROUP, "r-ops-whoami"),
        (
            principal("sales", "everyone"),
            "wiki",
            Effect.ALLOW,
            Reason.ALLOWED_BY_GROUP,
            "r-all-wiki",
        ),
        (principal("sales"), "whoami", Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP, None),
        (principal(), "whoami", Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP, None),
        (principal("engineering"), "wiki", Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP, None),
        (principal("engineering"), "nosuchapp", Effect.DENY, Reason.UNKNOWN_APP, None),
        (principal("engineering"), "", Effect.DENY, Reason.UNKNOWN_APP, None),
        (principal("engineering"), "empty", Effect.DENY, Reason.NO_RULE_FOR_APP, None),
        (
            principal("engineering", enabled=False),
            "whoami",
            Effect.DENY,
            Reason.USER_DISABLED,
            None,
        ),
        (principal(enabled=False), "nosuchapp", Effect.DENY, Reason.USER_DISABLED, None),
    ],
    ids=[
        "allow_when_user_in_allowed_group",
        "allow_when_user_in_second_allowed_group",
        "allow_when_one_of_several_groups_matches",
        "deny_when_user_not_in_allowed_group",
        "deny_when_user_in_no_group",
        "deny_when_group_allowed_only_for_another_app",
        "deny_unknown_app",
        "deny_empty_app_name",
        "deny_when_app_has_no_rules",
        "deny_when_user_disabled_even_if_in_allowed_group",
        "deny_disabled_user_before_looking_up_app",
    ],
)
def test_decide_table(
    snapshot: PolicySnapshot,
    who: Principal,
    app: str,
    effect: Effect,
    reason: Reason,
    rule_id: str | None,
) -> None:
    decision = decide(AccessRequest(principal=who, app=app), snapshot, NOW)
    assert decision.effect is effect
    assert decision.reasons == (reason,)
    assert decision.rule_id == rule_id
    assert decision.allowed is (effect is Effect.ALLOW)


def test_default_deny_with_an_empty_snapshot() -> None:
    empty = compile_snapshot(version=0, apps=(), rules=())
    decision = decide(AccessRequest(principal=principal("admins"), app="whoami"), empty, NOW)
    assert decision == Decision.deny(Reason.UNKNOWN_APP, detail="no app named 'whoami'")


def test_explained_deny_names_allowed_groups_and_the_users_groups(
    snapshot: PolicySnapshot,
) -> None:
    request = AccessRequest(principal=principal("sales", "hr"), app="whoami")
    decision = decide(request, snapshot, NOW, explain=True)
    assert decision.detail == (
        "r-eng-whoami: needs a member of ['engineering']; 'alice' is in ['hr', 'sales']; "
        "r-ops-whoami: needs a member of ['ops']; 'alice' is in ['hr', 'sales']"
    )


def test_explained_deny_traces_each_group_rule_and_its_failed_condition(
    snapshot: PolicySnapshot,
) -> None:
    request = AccessRequest(principal=principal("sales"), app="whoami")
    decision = decide(request, snapshot, NOW, explain=True)
    assert [(t.rule_id, t.effect, t.matched, t.failed_condition) for t in decision.trace] == [
        ("r-eng-whoami", "allow", False, "groups"),
        ("r-ops-whoami", "allow", False, "groups"),
    ]


def test_unexplained_deny_has_the_same_outcome_without_the_trace(
    snapshot: PolicySnapshot,
) -> None:
    request = AccessRequest(principal=principal("sales"), app="whoami")
    quick = decide(request, snapshot, NOW)
    explained = decide(request, snapshot, NOW, explain=True)
    assert (quick.effect, quick.reasons, quick.rule_id) == (
        explained.effect,
        explained.reasons,
        explained.rule_id,
    )
    assert quick.trace == () and explained.trace != ()


def test_no_rule_detail_says_no_one_is_allowed(snapshot: PolicySnapshot) -> None:
    decision = decide(AccessRequest(principal=principal("x"), app="empty"), snapshot, NOW)
    assert decision.detail == "no rule allows anyone"
    assert decision.trace == ()


def test_allow_detail_names_the_matching_rule(snapshot: PolicySnapshot) -> None:
    request = AccessRequest(principal=principal("ops"), app="whoami")
    decision = decide(request, snapshot, NOW, explain=True)
    assert decision.detail == "rule r-ops-whoami"
    assert decision.trace == ()  # traces are built on denials only


def test_decisions_carry_end_user_explanations(snapshot: PolicySnapshot) -> None:
    decision = decide(AccessRequest(principal=principal("sales"), app="whoami"), snapshot, NOW)
    assert decision.explanations == (
        "You are not a member of any group allowed to use this application.",
    )


class _ExplodingApps(Mapping[str, CompiledApp]):
    """An apps index that fails on lookup, standing in for any bug inside evaluation."""

    def __getitem__(self, key: str) -> CompiledApp:
        raise RuntimeError("index corrupted")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: object, default: object = None) -> Any:
        raise RuntimeError("index corrupted")


def test_internal_error_during_evaluation_denies(caplog: pytest.LogCaptureFixture) -> None:
    broken = PolicySnapshot(version=1, apps=_ExplodingApps())
    request = AccessRequest(principal=principal("engineering"), app="whoami")
    decision = decide(request, broken, NOW)
    assert decision == Decision.deny(Reason.INTERNAL_ERROR)
    assert not decision.allowed
    assert decision.explanations == ("Access could not be evaluated, so it was denied.",)
    assert any(r.message == "decision_failed" and r.exc_info for r in caplog.records)


def test_internal_error_when_a_rule_set_is_malformed() -> None:
    app = App(name="whoami", upstream="http://x")
    broken = PolicySnapshot(
        version=1,
        apps={"whoami": CompiledApp(app=app, enforced=["engineering"])},  # type: ignore[arg-type]
    )
    request = AccessRequest(principal=principal("engineering"), app="whoami")
    decision = decide(request, broken, NOW)
    assert decision.reasons == (Reason.INTERNAL_ERROR,)
    assert decision.effect is Effect.DENY


_GROUPS = st.sampled_from(["eng", "ops", "hr", "sales", "admins", "everyone"])
_APP_NAMES = st.sampled_from(["whoami", "wiki", "grafana", "ci"])


@st.composite
def _worlds(draw: st.DrawFn) -> tuple[list[App], list[AccessRule], Principal, str]:
    app_names = draw(st.sets(_APP_NAMES))
    apps = [App(name=n, upstream=f"http://127.0.0.1/{n}") for n in sorted(app_names)]
    pairs = draw(st.lists(st.tuples(_APP_NAMES, _GROUPS), max_size=12))
    rules = [AccessRule(rule_id=f"r{i}", app=a, group=g) for i, (a, g) in enumerate(pairs)]
    who = Principal(
        user_id=draw(st.integers(1, 10_000)),
        name="someone",
        groups=frozenset(draw(st.sets(_GROUPS))),
        enabled=draw(st.booleans()),
    )
    return apps, rules, who, draw(_APP_NAMES)


@given(_worlds())
def test_allows_iff_enabled_and_groups_intersect_allowed_groups(
    world: tuple[list[App], list[AccessRule], Principal, str],
) -> None:
    apps, rules, who, app = world
    snapshot = compile_snapshot(version=1, apps=apps, rules=rules)
    decision = decide(AccessRequest(principal=who, app=app), snapshot, NOW)

    app_exists = any(a.name == app for a in apps)
    allowed_groups = {r.group for r in rules if r.app == app} if app_exists else set()
    expected = who.enabled and bool(who.groups & allowed_groups)
    assert decision.allowed is expected
    if decision.allowed:
        # The rule named is the first one listed for one of the user's matching groups.
        first_rule: dict[str, str] = {}
        for r in rules:
            if r.app == app:
                first_rule.setdefault(r.group, r.rule_id)
        assert decision.rule_id in {first_rule[g] for g in who.groups & allowed_groups}
        assert decision.reasons == (Reason.ALLOWED_BY_GROUP,)
    else:
        assert decision.rule_id is None
        assert len(decision.reasons) == 1
        assert decision.reasons[0] is not Reason.ALLOWED_BY_GROUP


def test_names_the_first_stored_rule_when_several_groups_allow() -> None:
    # Every replica must record the same rule id, whatever the set order of the user's groups.
    snapshot = compile_snapshot(
        version=1,
        apps=[App("wiki", "http://wiki")],
        rules=[AccessRule("allow:wiki:b", "wiki", "b"), AccessRule("allow:wiki:a", "wiki", "a")],
    )
    for groups in (frozenset({"a", "b"}), frozenset({"b", "a"}), frozenset({"z", "a", "b"})):
        principal = Principal(user_id=1, name="u", groups=groups)
        decision = decide(AccessRequest(principal, "wiki"), snapshot, NOW)
        assert decision.rule_id == "allow:wiki:b"
