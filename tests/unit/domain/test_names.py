from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.domain import validate_name
from nevertrust.domain.names import NAME_PATTERN, RESERVED_APP_NAMES
from nevertrust.errors import InvalidInput


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("app", "whoami"),
        ("app", "a"),
        ("app", "my-app-2"),
        ("app", "0day"),
        ("app", "a" * 63),
        ("group", "engineering"),
        ("group", "team-42"),
        ("user", "alice"),
        ("user", "alice.smith"),
        ("user", "alice_smith"),
        ("user", "a-b.c_d"),
        ("user", "u" * 64),
    ],
)
def test_accepts_valid_names(kind: str, value: str) -> None:
    assert validate_name(kind, value) == value


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("app", ""),
        ("app", "WhoAmI"),
        ("app", "-whoami"),
        ("app", "whoami-"),
        ("app", "who.ami"),
        ("app", "who_ami"),
        ("app", "who ami"),
        ("app", "a" * 64),
        ("app", "whoami\n"),
        ("app", "wh\u00f6ami"),
        ("group", "Admins"),
        ("group", "team.a"),
        ("group", "team_a"),
        ("user", ""),
        ("user", ".alice"),
        ("user", "alice."),
        ("user", "_alice"),
        ("user", "Alice"),
        ("user", "alice@example.com"),
        ("user", "u" * 65),
    ],
)
def test_rejects_invalid_names(kind: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name(kind, value)
    assert f"{kind} name {value!r} is invalid" in info.value.message
    assert info.value.details == {"field": "name"}
    assert info.value.code == "invalid-input"


def test_user_name_error_mentions_dots_and_underscores_but_group_error_does_not() -> None:
    with pytest.raises(InvalidInput, match="dots, underscores"):
        validate_name("user", "Bad")
    with pytest.raises(InvalidInput) as info:
        validate_name("group", "Bad")
    assert "dots" not in info.value.message


@pytest.mark.parametrize("name", sorted(RESERVED_APP_NAMES))
def test_rejects_reserved_app_names(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"app name '{name}' is reserved for the platform"):
        validate_name("app", name)


@pytest.mark.parametrize("kind", ["user", "group"])
@pytest.mark.parametrize("name", sorted(RESERVED_APP_NAMES))
def test_reserved_app_names_are_fine_for_users_and_groups(kind: str, name: str) -> None:
    assert validate_name(kind, name) == name


@given(st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda s: s not in RESERVED_APP_NAMES))
def test_every_valid_app_name_is_a_dns_label(name: str) -> None:
    assert validate_name("app", name) == name
    assert 1 <= len(name) <= 63
    assert name == name.lower()
    assert not name.startswith("-") and not name.endswith("-")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


@given(st.text(max_size=70))
def test_app_names_never_contain_dots_or_upper_case(value: str) -> None:
    try:
        validate_name("app", value)
    except InvalidInput:
        return
    assert "." not in value and value == value.lower() and value.isascii()
