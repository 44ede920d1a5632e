"""/api/v1/bans: sign-in bans from brute-force regulation."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.identity import BanRecord
from nevertrust.identity.regulation import parse_subject
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["identity"])


class BanOut(BaseModel):
    subject: str = Field(description='"user:NAME" (as typed, lower-cased) or "ip:ADDRESS"')
    reason: str
    failures: int
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, ban: BanRecord) -> BanOut:
        return cls(
            subject=ban.subject,
            reason=ban.reason,
            failures=ban.failures,
            created_at=ban.created_at,
            expires_at=ban.expires_at,
        )


class LiftOut(BaseModel):
    subject: str = Field(description="The subject as stored (normalised)")
    lifted: int = Field(description="Bans ended; 0 when none was in force")


@router.get("/bans", response_model=list[BanOut])
def list_bans(svc: Services = Depends(services), _: Admin = Depends(current_admin)) -> list[BanOut]:
    """Bans in force, oldest first."""
    return [BanOut.of(b) for b in svc.regulator.list_bans()]


# ``:path`` because an IPv6 subject is a /64 network: ip:2001:db8::/64.
@router.delete("/bans/{subject:path}", response_model=LiftOut)
def lift_ban(
    subject: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> LiftOut:
    """Lift the bans on a subject and clear its failure count (audited)."""
    normalised = parse_subject(subject)
    return LiftOut(subject=normalised, lifted=svc.regulator.lift(normalised, actor=admin.actor))
