"""Common and guessable passwords are refused however long they are."""

from __future__ import annotations

import pytest

from nevertrust.identity import WeakPassword, check_password_policy
from nevertrust.identity.password_strength import weakness


@pytest.mark.parametrize(
    "password",
    ["password1234", "qwertyuiopasdf", "aaaaaaaaaaaaaaaa", "123456789012", "iloveyou2024"],
)
def test_common_or_patterned_passwords_are_refused_with_a_reason(password: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password_policy(password, username="alice", min_length=12)
    assert "too easy to guess" in caught.value.message


def test_a_password_built_from_the_user_name_is_refused() -> None:
    reason = weakness("alicealice2024", related=["alice"])
    assert reason is not None and reason.endswith(".")


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "vault-mosaic-tundra-51", "T7#qLp!9vRz2mW"]
)
def test_strong_passwords_pass(password: str) -> None:
    check_password_policy(password, username="alice", min_length=12)
    assert weakness(password, related=["alice"]) is None


def test_very_long_passwords_are_checked_on_a_prefix_and_stay_fast() -> None:
    # zxcvbn is super-linear; a 1000-character password must not stall a request.
    assert weakness("Zq8!" + "x7Lm#p2R" * 120) is None


def test_the_score_threshold_is_configurable_and_zero_turns_it_off() -> None:
    assert weakness("ChangeMe123456", min_score=3) is not None  # scores 2
    assert weakness("ChangeMe123456", min_score=2) is None
    assert weakness("aaaaaaaaaaaa", min_score=0) is None
    check_password_policy("aaaaaaaaaaaa", username="alice", min_length=12, min_score=0)
