"""Decisions are values with stable reason codes, never exceptions.

The deny page, the audit record and (later) report-only and replay all read the same
``Reason`` values, so their spelling is part of the public interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Decision", "Effect", "Reason"]


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Reason(StrEnum):
    ALLOWED_BY_GROUP = "allowed-by-group"
    USER_UNAUTHENTICATED = "user-unauthenticated"
    USER_DISABLED = "user-disabled"
    UNKNOWN_APP = "unknown-app"
    NOT_IN_ALLOWED_GROUP = "not-in-allowed-group"
    NO_RULE_FOR_APP = "no-rule-for-app"
    INTERNAL_ERROR = "internal-error"


_EXPLANATIONS: dict[Reason, str] = {
    Reason.ALLOWED_BY_GROUP: "You are a member of a group this application allows.",
    Reason.USER_UNAUTHENTICATED: "You need to sign in first.",
    Reason.USER_DISABLED: "Your account is disabled.",
    Reason.UNKNOWN_APP: "There is no application you can reach at this address.",
    Reason.NOT_IN_ALLOWED_GROUP: "You are not a member of any group allowed to use this "
    "application.",
    Reason.NO_RULE_FOR_APP: "No one has been granted access to this application yet.",
    Reason.INTERNAL_ERROR: "Access could not be evaluated, so it was denied.",
}


def explain(reason: Reason) -> str:
    """A sentence an end user can read on the deny page."""
    return _EXPLANATIONS[reason]


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    reasons: tuple[Reason, ...]
    rule_id: str | None = None
    detail: str = ""
    report_only: bool = False
    explanations: tuple[str, ...] = field(default=(), compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @classmethod
    def allow(cls, reason: Reason, *, rule_id: str, detail: str = "") -> Decision:
        return cls(Effect.ALLOW, (reason,), rule_id, detail, explanations=(explain(reason),))

    @classmethod
    def deny(cls, reason: Reason, *, rule_id: str | None = None, detail: str = "") -> Decision:
        return cls(Effect.DENY, (reason,), rule_id, detail, explanations=(explain(reason),))
