"""Decisions are values with stable reason codes, never exceptions.

The deny page, the audit record, report-only and replay all read the same ``Reason``
values, so their spelling is part of the public interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Decision", "Effect", "Reason", "RuleTrace", "StepUp", "explain"]


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    STEP_UP = "step-up"  # allowed once the user re-authenticates with a stronger method
    REQUIRE_DEVICE = "require-device"  # allowed from a known, compliant device only


class Reason(StrEnum):
    ALLOWED_BY_GROUP = "allowed-by-group"
    ALLOWED_BY_RULE = "allowed-by-rule"
    DENIED_BY_RULE = "denied-by-rule"
    NO_MATCHING_RULE = "no-matching-rule"
    USER_UNAUTHENTICATED = "user-unauthenticated"
    USER_DISABLED = "user-disabled"
    UNKNOWN_APP = "unknown-app"
    NOT_IN_ALLOWED_GROUP = "not-in-allowed-group"
    NO_RULE_FOR_APP = "no-rule-for-app"
    MFA_REQUIRED = "mfa-required"
    MFA_STALE = "mfa-stale"
    DEVICE_UNKNOWN = "device-unknown"
    DEVICE_NONCOMPLIANT = "device-noncompliant"
    INTERNAL_ERROR = "internal-error"


_EXPLANATIONS: dict[Reason, str] = {
    Reason.ALLOWED_BY_GROUP: "You are a member of a group this application allows.",
    Reason.ALLOWED_BY_RULE: "A policy rule allows this request.",
    Reason.DENIED_BY_RULE: "A policy rule denies this request.",
    Reason.NO_MATCHING_RULE: "No policy rule allows this request.",
    Reason.USER_UNAUTHENTICATED: "You need to sign in first.",
    Reason.USER_DISABLED: "Your account is disabled.",
    Reason.UNKNOWN_APP: "There is no application you can reach at this address.",
    Reason.NOT_IN_ALLOWED_GROUP: "You are not a member of any group allowed to use this "
    "application.",
    Reason.NO_RULE_FOR_APP: "No one has been granted access to this application yet.",
    Reason.MFA_REQUIRED: "This application needs a stronger sign-in method.",
    Reason.MFA_STALE: "This application needs you to confirm your sign-in again.",
    Reason.DEVICE_UNKNOWN: "This application can only be used from an enrolled device. "
    "In a browser, sign in with the passkey bound to your device (run "
    "'nevertrust agent bind-browser' on it once).",
    Reason.DEVICE_NONCOMPLIANT: "Your device does not meet the security requirements.",
    Reason.INTERNAL_ERROR: "Access could not be evaluated, so it was denied.",
}


def explain(reason: Reason) -> str:
    """A sentence an end user can read on the deny page."""
    return _EXPLANATIONS[reason]


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """Why one rule did or did not apply: shown to admins on denials (near misses)."""

    rule_id: str
    effect: str
    matched: bool
    failed_condition: str = ""  # condition name, e.g. "groups"
    detail: str = ""  # expected versus got, in words


@dataclass(frozen=True, slots=True)
class StepUp:
    """What a step-up asks for: one of ``methods`` within ``max_age_seconds``."""

    methods: frozenset[str]
    max_age_seconds: int


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    reasons: tuple[Reason, ...]
    rule_id: str | None = None
    detail: str = ""
    report_only: bool = False
    explanations: tuple[str, ...] = field(default=(), compare=False)
    trace: tuple[RuleTrace, ...] = field(default=(), compare=False)
    step_up: StepUp | None = None
    # What the report-only policies would have decided, when they would decide otherwise.
    shadow: Decision | None = field(default=None, compare=False)

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @classmethod
    def allow(
        cls,
        reason: Reason,
        *,
        rule_id: str,
        detail: str = "",
        trace: tuple[RuleTrace, ...] = (),
    ) -> Decision:
        return cls(
            Effect.ALLOW, (reason,), rule_id, detail, explanations=(explain(reason),), trace=trace
        )

    @classmethod
    def deny(
        cls,
        reason: Reason,
        *,
        rule_id: str | None = None,
        detail: str = "",
        trace: tuple[RuleTrace, ...] = (),
        effect: Effect = Effect.DENY,
        step_up: StepUp | None = None,
    ) -> Decision:
        return cls(
            effect,
            (reason,),
            rule_id,
            detail,
            explanations=(explain(reason),),
            trace=trace,
            step_up=step_up,
        )

    def with_shadow(self, shadow: Decision | None) -> Decision:
        return Decision(
            self.effect,
            self.reasons,
            self.rule_id,
            self.detail,
            self.report_only,
            self.explanations,
            self.trace,
            self.step_up,
            shadow,
        )
