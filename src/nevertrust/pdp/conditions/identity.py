"""Who: users, groups, roles."""

from __future__ import annotations

from nevertrust.pdp.conditions._base import Condition

__all__ = ["groups", "roles", "users"]


def users(names: list[str]) -> Condition:
    allowed = frozenset(names)
    return Condition(
        "users",
        lambda r, _n: r.principal.name in allowed,
        lambda r, _n: f"user {r.principal.name!r} is not one of {sorted(allowed)}",
    )


def groups(names: list[str] | frozenset[str]) -> Condition:
    allowed = frozenset(names)
    return Condition(
        "groups",
        lambda r, _n: not allowed.isdisjoint(r.principal.groups),
        lambda r, _n: (
            f"needs a member of {sorted(allowed)}; {r.principal.name!r} is in "
            f"{sorted(r.principal.groups) or 'no group'}"
        ),
    )


def roles(names: list[str]) -> Condition:
    allowed = frozenset(names)
    return Condition(
        "roles",
        lambda r, _n: not allowed.isdisjoint(r.principal.roles),
        lambda r, _n: (
            f"needs a role in {sorted(allowed)}; has {sorted(r.principal.roles) or 'none'}"
        ),
    )
