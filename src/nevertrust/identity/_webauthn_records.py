"""Audit records of passkey ceremonies, one shape for the second-factor, registration,
management and passkey-first paths alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.errors import NeverTrustError
from nevertrust.identity.models import UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork

__all__ = ["FACTOR", "record_passkey_event", "record_passkey_refusal"]

FACTOR = "webauthn"


def record_passkey_event(
    uow: UnitOfWork,
    action: Action,
    user: UserRecord,
    now: datetime,
    source_ip: str,
    *,
    actor: str = "",
    **details: Any,
) -> None:
    subject = f"user:{user.name}"
    uow.audit.append(
        [
            AuditEntry(
                ts=now,
                actor=actor or subject,
                action=action,
                outcome=Outcome.SUCCESS,
                target=subject,
                source=source_ip,
                details={"factor": FACTOR, **details},
            )
        ]
    )


def record_passkey_refusal(
    uow: UnitOfWork,
    subject: str,
    now: datetime,
    source_ip: str,
    exc: NeverTrustError,
    *,
    ceremony: str,
) -> None:
    uow.audit.append(
        [
            AuditEntry(
                ts=now,
                actor=subject,
                action=Action.MFA_FAILED,
                outcome=Outcome.FAILURE,
                target=subject,
                source=source_ip,
                reason=exc.code,
                details={"factor": FACTOR, "ceremony": ceremony, "detail": exc.message},
            )
        ]
    )
