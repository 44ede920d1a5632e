from __future__ import annotations

from datetime import timedelta

import pytest

from nevertrust.pdp.conditions import auth

from ._helpers import NOW, request


@pytest.mark.parametrize(
    ("used", "holds"),
    [({"webauthn"}, True), ({"pwd", "otp"}, True), ({"pwd"}, False), (set(), False)],
    ids=["listed", "one-of-several", "unlisted", "none"],
)
def test_auth_methods_holds_when_any_listed_method_was_used(used: set[str], holds: bool) -> None:
    condition = auth.auth_methods(["otp", "webauthn"])
    assert condition.test(request(auth_methods=frozenset(used)), NOW) is holds


def test_auth_methods_explains_needed_and_used() -> None:
    condition = auth.auth_methods(["webauthn", "otp"])
    said = condition.explain(request(auth_methods=frozenset({"pwd"})), NOW)
    assert said == "needs sign-in with one of ['otp', 'webauthn']; used ['pwd']"


@pytest.mark.parametrize("factor", sorted(auth.SECOND_FACTORS))
def test_every_second_factor_counts_for_mfa_max_age(factor: str) -> None:
    fresh = request(auth_methods=frozenset({"pwd", factor}), auth_time=NOW)
    assert auth.mfa_max_age(60).test(fresh, NOW)


@pytest.mark.parametrize(
    ("methods", "age", "holds"),
    [
        ({"pwd", "otp"}, 0, True),
        ({"otp"}, 900, True),  # exactly the limit still counts
        ({"otp"}, 901, False),
        ({"pwd"}, 0, False),  # a password is not a second factor
        ({"sso"}, 0, False),
        ({"recovery"}, 0, False),
        (set(), 0, False),
    ],
    ids=["fresh", "at-limit", "stale", "password-only", "sso", "recovery-code", "nothing"],
)
def test_mfa_max_age_needs_a_second_factor_within_the_age(
    methods: set[str], age: int, holds: bool
) -> None:
    signed_in = request(auth_methods=frozenset(methods), auth_time=NOW - timedelta(seconds=age))
    assert auth.mfa_max_age(900).test(signed_in, NOW) is holds


def test_mfa_max_age_is_false_when_the_sign_in_time_is_unknown() -> None:
    unknown = request(auth_methods=frozenset({"otp"}), auth_time=None)
    assert not auth.mfa_max_age(900).test(unknown, NOW)


def test_mfa_max_age_explains_the_age_needed_and_found() -> None:
    condition = auth.mfa_max_age(300)
    stale = request(auth_methods=frozenset({"otp"}), auth_time=NOW - timedelta(seconds=420))
    assert condition.explain(stale, NOW) == ("needs a second factor within 300s; last was 420s ago")
    none = request(auth_methods=frozenset({"pwd"}), auth_time=NOW)
    assert condition.explain(none, NOW) == "needs a second factor; none was used"


def test_strong_method_within_needs_one_of_the_given_methods() -> None:
    signed_in = request(auth_methods=frozenset({"hwk"}), auth_time=NOW - timedelta(seconds=10))
    assert auth.strong_method_within(signed_in, frozenset({"hwk"}), 10, NOW)
    assert not auth.strong_method_within(signed_in, frozenset({"hwk"}), 9, NOW)
    assert not auth.strong_method_within(signed_in, frozenset({"webauthn"}), 10, NOW)
