"""What: HTTP method and path; and the request's risk level."""

from __future__ import annotations

import re

from nevertrust.domain.models import RiskLevel
from nevertrust.pdp.conditions._base import Condition

__all__ = ["methods", "paths", "risk_max"]


def methods(names: list[str]) -> Condition:
    allowed = frozenset(names)
    return Condition(
        "http.methods",
        lambda r, _n: r.method in allowed,
        lambda r, _n: f"needs a method in {sorted(allowed)}; got {r.method}",
    )


def _glob(pattern: str) -> str:
    # Only '*' and '?' are special, as the language documents. (fnmatch would also read
    # '[...]' as a character class, so a deny rule on '/a[1]' would miss the path '/a[1]'.)
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def paths(patterns: list[str]) -> Condition:
    # '*' matches any run of characters (slashes included), '?' one character. An empty
    # list matches no path, like every other list condition (an empty regex matched all).
    alternatives = "|".join(f"(?:{_glob(p)})" for p in patterns)
    match = re.compile(f"(?:{alternatives})\\Z", re.DOTALL).match
    return Condition(
        "http.paths",
        lambda r, _n: bool(patterns) and match(r.path) is not None,
        lambda r, _n: f"needs a path matching {patterns}; got {r.path!r}",
    )


def risk_max(level: RiskLevel) -> Condition:
    limit = level.rank
    return Condition(
        "risk_max",
        lambda r, _n: r.risk is not None and r.risk.rank <= limit,
        lambda r, _n: f"needs risk at most {level}; risk is {r.risk or 'unknown'}",
    )
