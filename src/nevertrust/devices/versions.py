"""Dotted numeric version comparison for OS versions ("12", "12.7", "10.0.22631", "14.5.1").

Only the leading dotted number counts: "22.04.3 LTS" is 22.4.3 and "14.5.1 (23F79)" is
14.5.1. Missing components are zeros, so "12" equals "12.0" and "12.0.0". A version with
no leading number cannot be compared; compliance treats it as undetermined
(``posture-missing``), never as new enough.
"""

from __future__ import annotations

import re

__all__ = ["compare_versions", "parse_version", "parse_version_strict", "version_at_least"]

# At most 8 components of at most 9 digits: no pathological integers from outside.
_LEADING = re.compile(r"\s*[vV]?(\d{1,9}(?:\.\d{1,9}){0,7})(?![\d])")
_STRICT = re.compile(r"\d{1,9}(?:\.\d{1,9}){0,7}")


def _normalise(parts: tuple[int, ...]) -> tuple[int, ...]:
    end = len(parts)
    while end > 1 and parts[end - 1] == 0:
        end -= 1
    return parts[:end]


def parse_version(text: str) -> tuple[int, ...] | None:
    """The comparable form of the version ``text`` starts with, or None if it has none."""
    match = _LEADING.match(text)
    if match is None:
        return None
    return _normalise(tuple(int(p) for p in match.group(1).split(".")))


def parse_version_strict(text: str) -> tuple[int, ...] | None:
    """Like ``parse_version`` but the whole text must be a dotted number (policy values)."""
    if _STRICT.fullmatch(text.strip()) is None:
        return None
    return _normalise(tuple(int(p) for p in text.strip().split(".")))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Raises ValueError when either has no leading dotted number.
    """
    left, right = parse_version(a), parse_version(b)
    if left is None or right is None:
        raise ValueError(f"cannot compare versions {a!r} and {b!r}")
    width = max(len(left), len(right))
    left += (0,) * (width - len(left))
    right += (0,) * (width - len(right))
    return (left > right) - (left < right)


def version_at_least(version: str, minimum: str) -> bool | None:
    """Whether ``version >= minimum``; None when ``version`` cannot be read."""
    try:
        return compare_versions(version, minimum) >= 0
    except ValueError:
        return None
