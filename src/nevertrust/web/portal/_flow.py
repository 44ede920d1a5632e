"""Where a browser goes once it has signed in, and what a step-up asks for.

The portal passes ``rd`` (the app URL the user wanted) and ``state`` (bound to a cookie on
the app host) from page to page; these helpers keep that hand-over in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from starlette.datastructures import FormData, QueryParams

from nevertrust.identity import SessionRecord

__all__ = ["MAX_NEXT", "FlowParams", "StepUpAsk", "continue_url"]

_KNOWN_METHODS = frozenset({"otp", "webauthn", "hwk", "mfa", "recovery"})
_MAX_AGE_LIMIT = 30 * 24 * 3600
# A portal page with its query: long enough for a browser-binding link and its proof.
MAX_NEXT = 2100


@dataclass(frozen=True, slots=True)
class FlowParams:
    rd: str = ""
    state: str = ""
    next: str = ""  # a portal page to return to (e.g. /account after a step-up)

    @classmethod
    def of(cls, source: QueryParams | FormData | dict[str, object]) -> FlowParams:
        return cls(
            rd=str(source.get("rd", ""))[:4000],
            state=str(source.get("state", ""))[:200],
            next=_portal_path(str(source.get("next", ""))[:MAX_NEXT]),
        )

    def query(self, **extra: str) -> str:
        values = {"rd": self.rd, "state": self.state}
        if self.next:
            values["next"] = self.next
        return urlencode({**values, **extra})


def _portal_path(path: str) -> str:
    """Only absolute paths on the portal itself; anything else is dropped (no redirect out)."""
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return ""
    if any(ch in path for ch in "\r\n\\") or not path.isprintable():
        return ""
    return path


def continue_url(flow: FlowParams) -> str:
    """After sign-in: on to the app through /authorize, back to a portal page, or home."""
    if flow.rd and flow.state:
        return f"/authorize?{flow.query()}"
    return flow.next or "/"


@dataclass(frozen=True, slots=True)
class StepUpAsk:
    """A gateway's request for a fresher or stronger sign-in (methods, max age)."""

    methods: frozenset[str]
    max_age_seconds: int

    @classmethod
    def parse(cls, methods: str, max_age: str) -> StepUpAsk | None:
        """None when absent; malformed values are treated as absent (the gateway re-decides)."""
        names = frozenset(m for m in methods.split(",") if m)
        if not names or not names <= _KNOWN_METHODS:
            return None
        try:
            age = int(max_age)
        except ValueError:
            return None
        if not 0 < age <= _MAX_AGE_LIMIT:
            return None
        return cls(methods=names, max_age_seconds=age)

    def satisfied_by(self, session: SessionRecord, now: datetime) -> bool:
        if self.methods.isdisjoint(session.auth_methods):
            return False
        return (now - session.auth_time).total_seconds() <= self.max_age_seconds

    def usable_factors(self, factors: frozenset[str]) -> frozenset[str]:
        """Which of the user's factors ("otp", "webauthn") would satisfy this ask."""
        usable = set()
        if "otp" in factors and self.methods & {"otp", "mfa"}:
            usable.add("otp")
        if "webauthn" in factors and self.methods & {"webauthn", "hwk", "mfa"}:
            usable.add("webauthn")
        return frozenset(usable)

    def query_values(self) -> dict[str, str]:
        return {"methods": ",".join(sorted(self.methods)), "max_age": str(self.max_age_seconds)}
