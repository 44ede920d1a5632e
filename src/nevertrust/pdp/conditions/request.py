"""What: HTTP method and path; and the request's risk level."""

from __future__ import annotations

import re
from fnmatch import translate

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


def paths(patterns: list[str]) -> Condition:
    # '*' matches any run of characters (slashes included), '?' one character.
    matcher = re.compile("|".join(f"(?:{translate(p)})" for p in patterns)).match
    return Condition(
        "http.paths",
        lambda r, _n: matcher(r.path) is not None,
        lambda r, _n: f"needs a path matching {patterns}; got {r.path!r}",
    )


def risk_max(level: RiskLevel) -> Condition:
    limit = level.rank
    return Condition(
        "risk_max",
        lambda r, _n: r.risk is not None and r.risk.rank <= limit,
        lambda r, _n: f"needs risk at most {level}; risk is {r.risk or 'unknown'}",
    )
