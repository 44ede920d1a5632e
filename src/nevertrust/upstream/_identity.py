"""The identity an assertion vouches for, as upstream handlers read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from nevertrust.gateway.assertion import InvalidAssertion

__all__ = ["Identity", "MissingAssertion"]


class MissingAssertion(InvalidAssertion):
    """The request did not come through the gateway (or something stripped the header)."""

    code = "missing-assertion"


def _strings(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAssertion(f"assertion claim {name!r} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the gateway let through, from a verified assertion.

    ``subject`` is the stable user id (``sub``); ``name`` the user name, which an admin
    can change. ``amr`` lists how the user signed in (``pwd``, ``mfa``, ...), at
    ``auth_time``. ``claims`` holds every claim, read-only.
    """

    subject: str
    name: str
    email: str
    groups: tuple[str, ...]
    amr: tuple[str, ...]
    auth_time: datetime
    claims: Mapping[str, Any]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """Build from claims ``verify_assertion`` returned (signature already checked)."""
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            raise InvalidAssertion("assertion has no numeric 'auth_time' claim")
        return cls(
            subject=str(claims["sub"]),
            name=str(claims.get("name", "")),
            email=str(claims.get("email", "")),
            groups=_strings(claims, "groups"),
            amr=_strings(claims, "amr"),
            auth_time=datetime.fromtimestamp(auth_time, UTC),
            claims=MappingProxyType(dict(claims)),
        )
