from __future__ import annotations

import pytest

from nevertrust.identity import Passwords

DUMMY_PASSWORD = "nevertrust-dummy-password-for-timing"


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords(memory_kib=1024, time_cost=1)


def test_hash_is_argon2id_and_salted(passwords: Passwords) -> None:
    first = passwords.hash("correct horse battery")
    second = passwords.hash("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second
    assert "correct horse battery" not in first


def test_verify_accepts_the_right_password(passwords: Passwords) -> None:
    assert passwords.verify(passwords.hash("correct horse battery"), "correct horse battery")


@pytest.mark.parametrize(
    "attempt", ["wrong", "", "Correct horse battery", "correct horse battery "]
)
def test_verify_rejects_a_wrong_password(passwords: Passwords, attempt: str) -> None:
    assert not passwords.verify(passwords.hash("correct horse battery"), attempt)


def test_verify_without_a_hash_returns_false(passwords: Passwords) -> None:
    assert passwords.verify(None, "anything") is False


@pytest.mark.parametrize("stored", [None, ""])
def test_the_timing_dummy_password_never_signs_anyone_in(
    passwords: Passwords, stored: str | None
) -> None:
    # The dummy hash exists only to spend the same time on unknown users; its password is
    # public (it is in the source), so it must never verify for a user without a hash.
    assert passwords.verify(stored, DUMMY_PASSWORD) is False


@pytest.mark.parametrize("stored", ["not-a-hash", "$argon2id$v=19$m=1024,t=1,p=1$broken"])
def test_verify_with_a_corrupt_hash_returns_false(passwords: Passwords, stored: str) -> None:
    assert passwords.verify(stored, "anything") is False


def test_hash_with_current_parameters_needs_no_rehash(passwords: Passwords) -> None:
    assert not passwords.needs_rehash(passwords.hash("correct horse battery"))


def test_hash_with_weaker_parameters_needs_rehash(passwords: Passwords) -> None:
    stronger = Passwords(memory_kib=2048, time_cost=2)
    old_hash = passwords.hash("correct horse battery")
    assert stronger.needs_rehash(old_hash)
    # ... and still verifies, so the user can sign in and be upgraded.
    assert stronger.verify(old_hash, "correct horse battery")
