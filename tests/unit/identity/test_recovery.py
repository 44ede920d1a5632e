"""Recovery codes: their shape, their strength, and forgiving but exact normalisation."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.identity.recovery import (
    ALPHABET,
    code_hash,
    new_code,
    normalise_code,
)

SHAPE = re.compile(r"^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$")


def test_codes_look_like_xxxx_xxxx_xxxx_in_an_unambiguous_alphabet() -> None:
    codes = {new_code() for _ in range(200)}

    assert len(codes) == 200  # no repeats
    for code in codes:
        assert SHAPE.match(code), code
        assert not set(code) & set("ilou"), code  # nothing to misread as 1, 0 or v


def test_each_code_carries_at_least_60_bits() -> None:
    assert len(set(ALPHABET)) == 32
    assert 12 * math.log2(len(ALPHABET)) >= 60


@pytest.mark.parametrize(
    "typed",
    ["7k3m-q9xd-0hbt", "7K3M-Q9XD-0HBT", "7k3mq9xd0hbt", " 7k3m q9xd 0hbt ", "7k3m-q9xd-ohbt"],
)
def test_case_dashes_spaces_and_look_alike_letters_do_not_matter(typed: str) -> None:
    assert normalise_code(typed) == "7K3MQ9XD0HBT"


def test_i_and_l_are_read_as_one() -> None:
    assert normalise_code("iLi1-0000-0000") == "111100000000"


@pytest.mark.parametrize(
    "typed",
    ["", "7k3m-q9xd-0hb", "7k3m-q9xd-0hbtx", "7k3m-q9xd-0hbu", "7k3m_q9xd_0hbt", "x" * 1000],
)
def test_anything_else_is_not_a_code(typed: str) -> None:
    assert normalise_code(typed) is None


def test_the_stored_hash_depends_on_the_user() -> None:
    assert code_hash(1, "7K3MQ9XD0HBT") != code_hash(2, "7K3MQ9XD0HBT")
    assert re.fullmatch(r"[0-9a-f]{64}", code_hash(1, "7K3MQ9XD0HBT"))


canonical = st.text(alphabet=ALPHABET, min_size=12, max_size=12)


@given(code=canonical, data=st.data())
def test_any_spelling_of_a_code_normalises_to_the_same_canonical_form(
    code: str, data: st.DataObject
) -> None:
    spelled = "".join(
        data.draw(st.sampled_from([c, c.lower()])) + data.draw(st.sampled_from(["", "-", " "]))
        for c in code
    )

    assert normalise_code(spelled) == code


@given(code=canonical, other=canonical)
def test_different_codes_never_normalise_alike(code: str, other: str) -> None:
    if code != other:
        assert normalise_code(code) != normalise_code(other)
        assert code_hash(1, code) != code_hash(1, other)
