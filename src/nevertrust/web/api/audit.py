"""/api/v1/audit and /api/v1/sessions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["audit"])


class AuditRecordOut(BaseModel):
    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    source: str
    outcome: str
    reason: str
    details: dict[str, Any]
    hash: str


class VerifyOut(BaseModel):
    intact: bool
    checked: int
    problems: list[str]


class SessionOut(BaseModel):
    id: str = Field(description="First 12 hex characters of the session hash")
    user_id: int
    created_at: datetime
    expires_at: datetime
    source_ip: str
    user_agent: str


class RevokeIn(BaseModel):
    user: str = Field(min_length=1, max_length=64)


class RevokeOut(BaseModel):
    revoked: int


@router.get("/audit", response_model=list[AuditRecordOut])
def tail(
    limit: int = Query(50, ge=1, le=1000),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> list[AuditRecordOut]:
    return [
        AuditRecordOut(
            seq=r.seq,
            ts=r.ts,
            actor=r.actor,
            action=r.action,
            target=r.target,
            source=r.source,
            outcome=r.outcome,
            reason=r.reason,
            details=json.loads(r.details),
            hash=r.hash,
        )
        for r in svc.audit.tail(limit)
    ]


@router.get("/audit/verify", response_model=VerifyOut)
def verify(svc: Services = Depends(services), _: Admin = Depends(current_admin)) -> VerifyOut:
    report = svc.audit.verify()
    return VerifyOut(intact=report.intact, checked=report.checked, problems=report.problems)


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(
    user: str | None = Query(None, max_length=64),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> list[SessionOut]:
    return [
        SessionOut(
            id=s.id_hash[:12],
            user_id=s.user_id,
            created_at=s.created_at,
            expires_at=s.expires_at,
            source_ip=s.source_ip,
            user_agent=s.user_agent,
        )
        for s in svc.auth.list_sessions(username=user)
    ]


@router.post("/sessions/revoke", response_model=RevokeOut)
def revoke(
    body: RevokeIn, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> RevokeOut:
    return RevokeOut(revoked=svc.auth.revoke_user_sessions(body.user, actor=admin.actor))
