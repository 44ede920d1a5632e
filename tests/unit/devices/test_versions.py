from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nevertrust.devices.versions import (
    compare_versions,
    parse_version,
    parse_version_strict,
    version_at_least,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("12", "12", 0),
        ("12", "12.0", 0),
        ("12.0.0", "12", 0),
        ("12.7", "12", 1),
        ("12", "12.7", -1),
        ("12.10", "12.9", 1),  # numeric, not lexical
        ("10.0.22631", "10.0.19045", 1),
        ("10.0.19045", "10.0.22631", -1),
        ("14.5.1", "14.5", 1),
        ("14.5", "14.5.1", -1),
        ("13.6.7", "14", -1),
        ("22.04.3 LTS", "22.04", 1),
        ("14.5.1 (23F79)", "14.5.1", 0),
        ("v6.1", "6.1.0", 0),
    ],
)
def test_versions_compare_as_dotted_numbers(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected


@pytest.mark.parametrize("text", ["", "unknown", "rolling", "Sonoma", ".12", "1234567890"])
def test_a_version_without_a_leading_number_cannot_be_compared(text: str) -> None:
    assert parse_version(text) is None
    assert version_at_least(text, "12") is None
    with pytest.raises(ValueError, match="cannot compare"):
        compare_versions(text, "12")


@pytest.mark.parametrize(
    ("text", "parsed"), [("12", (12,)), ("12.7", (12, 7)), ("10.0.22631", (10, 0, 22631))]
)
def test_policy_versions_must_be_plain_dotted_numbers(text: str, parsed: tuple[int, ...]) -> None:
    assert parse_version_strict(text) == parsed
    assert parse_version_strict(text + " LTS") is None
    assert parse_version_strict("v" + text) is None


versions = st.lists(st.integers(0, 99_999), min_size=1, max_size=5).map(
    lambda parts: ".".join(map(str, parts))
)


@settings(deadline=None)  # no timing assertions on a shared machine
@given(versions, versions)
def test_comparison_is_antisymmetric(a: str, b: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)


@settings(deadline=None)  # no timing assertions on a shared machine
@given(versions, versions, versions)
def test_comparison_is_transitive(a: str, b: str, c: str) -> None:
    if compare_versions(a, b) <= 0 and compare_versions(b, c) <= 0:
        assert compare_versions(a, c) <= 0


@settings(deadline=None)  # no timing assertions on a shared machine
@given(versions)
def test_trailing_zero_components_do_not_matter(a: str) -> None:
    assert compare_versions(a, a + ".0.0") == 0
