"""Audit vocabulary and records.

``Action`` values follow ``source:subject:action`` and are stable: SIEM rules match on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Action", "AuditEntry", "Outcome", "SealedRecord", "success"]


class Action(StrEnum):
    LOGIN_SUCCEEDED = "identity:login:succeeded"
    LOGIN_FAILED = "identity:login:failed"
    LOGIN_SECOND_FACTOR_REQUIRED = "identity:login:second-factor-required"
    STEP_UP_SUCCEEDED = "identity:step-up:succeeded"
    LOGOUT = "identity:session:logged-out"
    SESSION_REVOKED = "identity:session:revoked"
    BAN_CREATED = "identity:ban:created"  # too many failed sign-ins for a name or address
    BAN_LIFTED = "identity:ban:lifted"
    APP_SESSION_ISSUED = "identity:app-session:issued"
    PASSWORD_SET = "identity:password:set"  # noqa: S105 - an action name, not a secret
    SETUP_LINK_ISSUED = "identity:setup-link:issued"
    USER_CREATED = "identity:user:created"
    USER_DISABLED = "identity:user:disabled"
    USER_ENABLED = "identity:user:enabled"
    GROUP_CREATED = "identity:group:created"
    GROUP_MEMBER_ADDED = "identity:group:member-added"
    GROUP_MEMBER_REMOVED = "identity:group:member-removed"
    GROUP_MFA_REQUIRED = "identity:group:mfa-required"  # details: required true/false
    # Second factors (details name the factor: totp, recovery-code, ...)
    MFA_ENROLMENT_STARTED = "identity:mfa:enrolment-started"
    MFA_ENROLLED = "identity:mfa:enrolled"
    MFA_REMOVED = "identity:mfa:removed"
    MFA_RESET = "identity:mfa:reset"  # an admin removed every second factor of a user
    MFA_RENAMED = "identity:mfa:renamed"  # a passkey's label changed
    MFA_VERIFIED = "identity:mfa:verified"
    MFA_FAILED = "identity:mfa:failed"
    RECOVERY_CODES_GENERATED = "identity:mfa:recovery-codes-generated"
    # Service accounts and their API keys (details carry the key prefix, never the secret)
    SERVICE_ACCOUNT_CREATED = "identity:service-account:created"
    SERVICE_ACCOUNT_OWNER_SET = "identity:service-account:owner-set"
    API_KEY_ISSUED = "identity:api-key:issued"
    API_KEY_ROTATED = "identity:api-key:rotated"
    API_KEY_REVOKED = "identity:api-key:revoked"
    API_KEY_REJECTED = "identity:api-key:rejected"  # reason: malformed, expired, ...
    APP_CREATED = "catalog:app:created"
    APP_UPDATED = "catalog:app:updated"
    APP_REMOVED = "catalog:app:removed"
    RULE_ADDED = "catalog:rule:added"
    RULE_REMOVED = "catalog:rule:removed"
    RULE_UPDATED = "catalog:rule:updated"  # details: require_compliant_device true/false
    CONFIG_APPLIED = "catalog:config:applied"
    POLICY_APPLIED = "pdp:policy:applied"
    # Assertion signing keys (target signing-key:KID; rotation details name the keys it
    # replaced and when they leave the JWKS)
    SIGNING_KEY_CREATED = "gateway:signing-key:created"  # the first key of a new home
    SIGNING_KEY_ROTATED = "gateway:signing-key:rotated"
    SIGNING_KEY_RETIRED = "gateway:signing-key:retired"  # removed from the JWKS at once
    # Device trust (target device:ID; details carry states and reasons, never key material)
    DEVICE_TOKEN_CREATED = "devices:token:created"  # noqa: S105 - target user:NAME
    DEVICE_ENROLLED = "devices:device:enrolled"
    DEVICE_STATE_CHANGED = "devices:device:state-changed"  # a report, policy or staleness
    DEVICE_CERTIFICATE_RENEWED = "devices:certificate:renewed"
    DEVICE_QUARANTINED = "devices:device:quarantined"
    DEVICE_RELEASED = "devices:device:released"
    DEVICE_REMOVED = "devices:device:removed"
    DEVICE_BROWSER_BIND = "devices:browser:bind"  # a bind proof spent (or refused)
    DEVICE_POLICY_SET = "devices:policy:set"  # target device-policy:PLATFORM
    DEVICE_CA_CREATED = "devices:ca:created"
    DECISION_ALLOWED = "pdp:decision:allowed"
    DECISION_DENIED = "pdp:decision:denied"
    TUNNEL_CLOSED = "gateway:tunnel:closed"  # bytes each way, duration, who ended it


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, before it is given a place in the chain."""

    ts: datetime
    actor: str
    action: Action
    outcome: Outcome
    target: str = ""
    source: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """An entry with its sequence number and hash link, as stored."""

    seq: int
    ts: datetime
    actor: str
    action: str
    outcome: str
    target: str
    source: str
    reason: str
    details: str  # canonical JSON, exactly the bytes that were hashed
    prev_hash: str
    hash: str


def success(action: Action, *, ts: datetime, actor: str, target: str, **details: Any) -> AuditEntry:
    """The record of an admin change that succeeded: one shape for every service."""
    return AuditEntry(
        ts=ts, actor=actor, action=action, outcome=Outcome.SUCCESS, target=target, details=details
    )
