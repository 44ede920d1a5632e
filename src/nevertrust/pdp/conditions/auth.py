"""How the user signed in: methods, and how recent a second factor is."""

from __future__ import annotations

from datetime import datetime

from nevertrust.domain.models import AccessRequest
from nevertrust.pdp.conditions._base import Condition

__all__ = ["SECOND_FACTORS", "auth_methods", "mfa_max_age", "strong_method_within"]

SECOND_FACTORS = frozenset({"otp", "webauthn", "hwk", "mfa"})


def strong_method_within(
    request: AccessRequest, methods: frozenset[str], max_age_seconds: int, now: datetime
) -> bool:
    """One of ``methods`` was used, and the sign-in is at most ``max_age_seconds`` old."""
    if request.auth_time is None or methods.isdisjoint(request.auth_methods):
        return False
    return (now - request.auth_time).total_seconds() <= max_age_seconds


def auth_methods(names: list[str]) -> Condition:
    wanted = frozenset(names)
    return Condition(
        "auth_methods",
        lambda r, _n: not wanted.isdisjoint(r.auth_methods),
        lambda r, _n: f"needs sign-in with one of {sorted(wanted)}; used {sorted(r.auth_methods)}",
    )


def mfa_max_age(seconds: int) -> Condition:
    def explain(r: AccessRequest, now: datetime) -> str:
        if SECOND_FACTORS.isdisjoint(r.auth_methods) or r.auth_time is None:
            return "needs a second factor; none was used"
        age = int((now - r.auth_time).total_seconds())
        return f"needs a second factor within {seconds}s; last was {age}s ago"

    return Condition(
        "mfa_max_age",
        lambda r, n: strong_method_within(r, SECOND_FACTORS, seconds, n),
        explain,
    )
