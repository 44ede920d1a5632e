from __future__ import annotations

import pytest

from nevertrust.pdp.conditions import identity

from ._helpers import NOW, request


@pytest.mark.parametrize(
    ("name", "holds"),
    [("alice", True), ("bob", True), ("carol", False), ("", False), ("Alice", False)],
)
def test_users_holds_for_a_listed_user_name_only(name: str, holds: bool) -> None:
    assert identity.users(["alice", "bob"]).test(request(name=name), NOW) is holds


@pytest.mark.parametrize(
    ("groups", "holds"),
    [
        ({"eng"}, True),
        ({"sales", "ops"}, True),
        ({"sales"}, False),
        (set(), False),
    ],
    ids=["member", "one-of-several", "other-group", "no-group"],
)
def test_groups_holds_for_a_member_of_any_listed_group(groups: set[str], holds: bool) -> None:
    condition = identity.groups(["eng", "ops"])
    assert condition.test(request(groups=frozenset(groups)), NOW) is holds


@pytest.mark.parametrize(
    ("roles", "holds"),
    [({"admin"}, True), ({"viewer", "admin"}, True), ({"viewer"}, False), (set(), False)],
)
def test_roles_holds_for_any_listed_role(roles: set[str], holds: bool) -> None:
    assert identity.roles(["admin"]).test(request(roles=frozenset(roles)), NOW) is holds


def test_conditions_carry_stable_names() -> None:
    assert identity.users(["a"]).name == "users"
    assert identity.groups(["a"]).name == "groups"
    assert identity.roles(["a"]).name == "roles"


def test_users_explains_who_was_expected_and_who_came() -> None:
    said = identity.users(["bob", "alice"]).explain(request(name="carol"), NOW)
    assert said == "user 'carol' is not one of ['alice', 'bob']"


def test_groups_explains_the_allowed_groups_and_the_users_groups() -> None:
    condition = identity.groups(["ops", "eng"])
    said = condition.explain(request(groups=frozenset({"sales", "hr"})), NOW)
    assert said == "needs a member of ['eng', 'ops']; 'alice' is in ['hr', 'sales']"
    assert condition.explain(request(), NOW).endswith("'alice' is in no group")


def test_roles_explains_the_roles_needed_and_held() -> None:
    condition = identity.roles(["admin"])
    assert condition.explain(request(roles=frozenset({"viewer"})), NOW) == (
        "needs a role in ['admin']; has ['viewer']"
    )
    assert condition.explain(request(), NOW) == "needs a role in ['admin']; has none"
