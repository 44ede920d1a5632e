"""/api/v1/users/{name}/mfa: a user's second factors, for admins.

Secrets (the otpauth URI, recovery codes) appear in exactly one response each and are
never stored in clear, so a lost response means provisioning again.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.identity import MfaStatus
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["mfa"])


class MfaStatusOut(BaseModel):
    user: str
    totp: bool = Field(description="A confirmed authenticator app.")
    totp_pending: bool = Field(description="Enrolment started and not confirmed yet.")
    totp_confirmed_at: datetime | None
    passkeys: int = Field(description="Registered passkeys (WebAuthn credentials).")
    recovery_codes: int = Field(description="Unused recovery codes.")

    @classmethod
    def of(cls, status: MfaStatus) -> MfaStatusOut:
        return cls(
            user=status.user,
            totp=status.totp,
            totp_pending=status.totp_pending,
            totp_confirmed_at=status.totp_confirmed_at,
            passkeys=status.passkeys,
            recovery_codes=status.recovery_codes,
        )


class TotpEnrolmentOut(BaseModel):
    user: str
    uri: str = Field(description="otpauth:// URI with the secret; returned only this once.")
    secret: str = Field(description="The base32 secret, for typing into an app by hand.")


class RemovedOut(BaseModel):
    removed: bool = Field(description="False when there was nothing to remove.")


class RecoveryCodesOut(BaseModel):
    user: str
    codes: list[str] = Field(description="One-time codes; earlier codes no longer work.")


@router.get("/users/{name}/mfa", response_model=MfaStatusOut)
def get_mfa(
    name: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> MfaStatusOut:
    return MfaStatusOut.of(svc.totp.status(name)[0])


@router.post("/users/{name}/mfa/totp", response_model=TotpEnrolmentOut, status_code=201)
def enroll_totp(
    name: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> TotpEnrolmentOut:
    """Provision an authenticator app (replacing any earlier one), confirmed at once."""
    enrolment = svc.totp.enroll_confirmed(name, actor=admin.actor)
    return TotpEnrolmentOut(user=name, uri=enrolment.uri, secret=enrolment.secret)


@router.delete("/users/{name}/mfa/totp", response_model=RemovedOut)
def remove_totp(
    name: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> RemovedOut:
    return RemovedOut(removed=svc.totp.remove(name, actor=admin.actor))


class MfaResetOut(BaseModel):
    user: str
    totp: bool = Field(description="Whether an authenticator app was removed.")
    passkeys: int = Field(description="Passkeys removed.")
    recovery_codes: int = Field(description="Recovery codes removed.")


@router.delete("/users/{name}/mfa", response_model=MfaResetOut)
def reset_mfa(
    name: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> MfaResetOut:
    """Remove every second factor of a user in one step (lost devices)."""
    done = svc.mfa_reset.reset(name, actor=admin.actor)
    return MfaResetOut(
        user=done.user,
        totp=done.totp,
        passkeys=done.passkeys,
        recovery_codes=done.recovery_codes,
    )


@router.post("/users/{name}/mfa/recovery-codes", response_model=RecoveryCodesOut, status_code=201)
def new_recovery_codes(
    name: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> RecoveryCodesOut:
    return RecoveryCodesOut(user=name, codes=svc.recovery_codes.generate(name, actor=admin.actor))
