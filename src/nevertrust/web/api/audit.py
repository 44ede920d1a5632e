"""/api/v1/audit and /api/v1/sessions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.errors import NotFound
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
    auth_methods: list[str] = Field(description="How the user signed in (RFC 8176 names)")
    auth_time: datetime = Field(description="When the user last verified a factor")
    last_seen_at: datetime = Field(description="Last activity seen (written in batches)")
    device_id: str | None = Field(
        default=None,
        description="The device whose platform passkey opened this browser session, if any",
    )


class RevokeIn(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    session: str | None = Field(
        default=None,
        min_length=8,
        max_length=64,
        pattern="^[0-9a-f]+$",
        description="Only this session (a prefix of its id); without it, every session",
    )


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
            auth_methods=list(s.auth_methods),
            auth_time=s.auth_time,
            last_seen_at=s.last_activity,
            device_id=s.device_id,
        )
        for s in svc.sessions.list_sessions(username=user)
    ]


@router.post("/sessions/revoke", response_model=RevokeOut)
def revoke(
    body: RevokeIn, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> RevokeOut:
    if body.session is None:
        return RevokeOut(revoked=svc.sessions.revoke_user_sessions(body.user, actor=admin.actor))
    found = svc.sessions.revoke_session(body.user, body.session, actor=admin.actor)
    if not found:
        raise NotFound(
            f"{body.user!r} has no active session {body.session!r}", session=body.session
        )
    return RevokeOut(revoked=1)
