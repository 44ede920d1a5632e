from __future__ import annotations

import pytest

from nevertrust.domain import AccessRule, App
from nevertrust.pdp import compile_snapshot


def test_compiles_allowed_groups_per_app() -> None:
    snap = compile_snapshot(
        version=3,
        apps=[App(name="whoami", upstream="http://a"), App(name="wiki", upstream="http://b")],
        rules=[
            AccessRule(rule_id="r1", app="whoami", group="eng"),
            AccessRule(rule_id="r2", app="wiki", group="eng"),
            AccessRule(rule_id="r3", app="wiki", group="ops"),
        ],
    )
    assert snap.version == 3
    assert set(snap.apps) == {"whoami", "wiki"}
    assert dict(snap.apps["whoami"].allowed_groups) == {"eng": "r1"}
    assert dict(snap.apps["wiki"].allowed_groups) == {"eng": "r2", "ops": "r3"}
    assert snap.apps["whoami"].app.upstream == "http://a"


def test_first_rule_listed_for_a_group_wins_the_rule_id() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[App(name="whoami", upstream="http://a")],
        rules=[
            AccessRule(rule_id="first", app="whoami", group="eng"),
            AccessRule(rule_id="second", app="whoami", group="eng"),
        ],
    )
    assert dict(snap.apps["whoami"].allowed_groups) == {"eng": "first"}


def test_rules_for_apps_that_do_not_exist_are_ignored() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[App(name="whoami", upstream="http://a")],
        rules=[AccessRule(rule_id="r1", app="ghost", group="eng")],
    )
    assert set(snap.apps) == {"whoami"}
    assert snap.app("ghost") is None
    assert dict(snap.apps["whoami"].allowed_groups) == {}


def test_app_lookup_returns_compiled_app_or_none() -> None:
    snap = compile_snapshot(version=1, apps=[App(name="whoami", upstream="http://a")], rules=[])
    found = snap.app("whoami")
    assert found is not None and found.app.name == "whoami"
    assert snap.app("nope") is None


def test_accepts_one_shot_iterables() -> None:
    apps = (a for a in [App(name="whoami", upstream="http://a")])
    rules = (r for r in [AccessRule(rule_id="r1", app="whoami", group="eng")])
    snap = compile_snapshot(version=1, apps=apps, rules=rules)
    assert dict(snap.apps["whoami"].allowed_groups) == {"eng": "r1"}


def test_snapshot_cannot_be_changed_after_compilation() -> None:
    snap = compile_snapshot(
        version=1,
        apps=[App(name="whoami", upstream="http://a")],
        rules=[AccessRule(rule_id="r1", app="whoami", group="eng")],
    )
    with pytest.raises(TypeError):
        snap.apps["evil"] = snap.apps["whoami"]  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.apps["whoami"].allowed_groups["attackers"] = "r9"  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.version = 2  # type: ignore[misc]
