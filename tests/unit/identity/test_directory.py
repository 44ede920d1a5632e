from __future__ import annotations

import pytest

from nevertrust.identity.directory import check_password_policy
from nevertrust.identity.errors import WeakPassword


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "Zq8!x7Lm#p2R" * 85, "alice-but-longer"],
)
def test_accepts_passwords_that_meet_the_policy(password: str) -> None:
    check_password_policy(password, username="alice", min_length=12)


def test_rejects_too_short_saying_expected_and_got() -> None:
    with pytest.raises(WeakPassword) as info:
        check_password_policy("short", username="alice", min_length=12)
    assert info.value.message == "password too short: expected at least 12 characters, got 5"
    assert info.value.details == {"field": "password"}


def test_minimum_length_is_inclusive() -> None:
    check_password_policy("vault-mosaic-tun", username="alice", min_length=16)
    with pytest.raises(WeakPassword, match="too short"):
        check_password_policy("vault-mosaic-tu", username="alice", min_length=16)


def test_rejects_absurdly_long_passwords() -> None:
    with pytest.raises(WeakPassword, match="password longer than 1024 characters"):
        check_password_policy("x" * 1025, username="alice", min_length=12)


@pytest.mark.parametrize("password", ["alice.anderson", "ALICE.ANDERSON", "  alice.anderson  "])
def test_rejects_the_users_own_name(password: str) -> None:
    with pytest.raises(WeakPassword, match="must not be the user name"):
        check_password_policy(password, username="alice.anderson", min_length=12)


def test_error_message_never_contains_the_password() -> None:
    for password, username in [("hunter2", "bob"), ("bob.the.builder", "bob.the.builder")]:
        with pytest.raises(WeakPassword) as info:
            check_password_policy(password, username=username, min_length=12)
        assert password not in info.value.message
