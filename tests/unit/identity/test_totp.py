"""The TOTP verifier: RFC 6238 codes, the one-step drift window, and replay rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.identity.totp import time_step, verify_totp

# RFC 6238 appendix B: the SHA-1 seed "12345678901234567890", here in base32.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def code_for(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


@pytest.mark.parametrize(
    ("unix", "eight_digits"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_accepts_the_rfc_6238_test_vectors(unix: int, eight_digits: str) -> None:
    # The RFC lists 8-digit values; 6-digit codes are their last six digits (RFC 4226 5.3).
    result = verify_totp(
        secret=RFC_SECRET, code=eight_digits[-6:], now=at(unix), last_used_step=None
    )

    assert result.step == unix // 30
    assert not result.replayed


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_accepts_codes_one_step_either_side_of_now(offset: int) -> None:
    now = at(1_795_600_000)
    code = code_for(RFC_SECRET, time_step(now) + offset)

    result = verify_totp(secret=RFC_SECRET, code=code, now=now, last_used_step=None)

    assert result.step == time_step(now) + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_rejects_codes_further_than_one_step_away(offset: int) -> None:
    now = at(1_795_600_000)
    code = code_for(RFC_SECRET, time_step(now) + offset)

    result = verify_totp(secret=RFC_SECRET, code=code, now=now, last_used_step=None)

    assert (result.step, result.replayed) == (None, False)


def test_window_edges_follow_the_clock_not_the_code() -> None:
    # A code of step t still counts during step t+1 (drift) and stops when t+2 begins,
    # exactly 60 s after its own step began.
    start = 1_795_599_990  # a multiple of 30
    code = code_for(RFC_SECRET, start // 30)

    last_good = verify_totp(secret=RFC_SECRET, code=code, now=at(start + 59), last_used_step=None)
    first_bad = verify_totp(secret=RFC_SECRET, code=code, now=at(start + 60), last_used_step=None)

    assert last_good.step == start // 30
    assert first_bad.step is None


def test_a_used_code_is_rejected_as_a_replay() -> None:
    now = at(1_795_600_000)
    step = time_step(now)
    code = code_for(RFC_SECRET, step)

    result = verify_totp(secret=RFC_SECRET, code=code, now=now, last_used_step=step)

    assert (result.step, result.replayed) == (None, True)


def test_an_older_code_is_rejected_once_a_newer_step_was_used() -> None:
    now = at(1_795_600_000)
    step = time_step(now)

    older = verify_totp(
        secret=RFC_SECRET, code=code_for(RFC_SECRET, step - 1), now=now, last_used_step=step
    )
    newer = verify_totp(
        secret=RFC_SECRET, code=code_for(RFC_SECRET, step + 1), now=now, last_used_step=step
    )

    assert (older.step, older.replayed) == (None, True)
    assert newer.step == step + 1


@pytest.mark.parametrize("typed", ["{} {}", " {}{} ", "{}\t{}"])
def test_spaces_people_type_between_digit_groups_are_ignored(typed: str) -> None:
    now = at(1_795_600_000)
    code = code_for(RFC_SECRET, time_step(now))

    result = verify_totp(
        secret=RFC_SECRET, code=typed.format(code[:3], code[3:]), now=now, last_used_step=None
    )

    assert result.step == time_step(now)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12345a"])
def test_malformed_codes_are_rejected_without_calling_them_replays(code: str) -> None:
    result = verify_totp(secret=RFC_SECRET, code=code, now=at(1_795_600_000), last_used_step=10**9)

    assert (result.step, result.replayed) == (None, False)


secrets_ = st.builds(lambda: pyotp.random_base32(length=32))
times = st.integers(min_value=60, max_value=4_000_000_000)
offsets = st.sampled_from([-1, 0, 1])
later = st.integers(min_value=0, max_value=3600)


@given(secret=secrets_, unix=times, offset=offsets, wait=later)
def test_any_code_accepted_once_is_rejected_afterwards(
    secret: str, unix: int, offset: int, wait: int
) -> None:
    now = at(unix)
    code = code_for(secret, time_step(now) + offset)

    first = verify_totp(secret=secret, code=code, now=now, last_used_step=None)
    assert first.step is not None
    again = verify_totp(
        secret=secret, code=code, now=now + timedelta(seconds=wait), last_used_step=first.step
    )

    assert again.step is None


@given(secret=secrets_, unix=times, used=st.integers(min_value=-2, max_value=2))
def test_never_accepts_a_step_at_or_before_the_last_used_one(
    secret: str, unix: int, used: int
) -> None:
    now = at(unix)
    last_used = time_step(now) + used
    for offset in (-1, 0, 1):
        code = code_for(secret, time_step(now) + offset)
        result = verify_totp(secret=secret, code=code, now=now, last_used_step=last_used)
        if result.step is not None:
            assert result.step > last_used
        if time_step(now) + offset > last_used:
            assert result.step is not None  # a fresh step is always accepted
