"""/api/v1/devices: enrolment and signed reports (the agent's), and device administration.

Enrolment and reports carry their own credential (the one-time token; the device key's
signature), so they take no admin session or API key. Refused enrolment tokens count
against the caller's address like failed sign-ins, so tokens cannot be guessed at speed.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from nevertrust.app import Services
from nevertrust.crypto import hash_token
from nevertrust.devices import InvalidEnrolmentToken, ReportMalformed
from nevertrust.devices.signed_reports import MAX_REPORT_BYTES
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["devices"])


class EnrolIn(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="One-time enrolment token.")
    public_key: str = Field(
        min_length=1, max_length=4000, description="PEM SubjectPublicKeyInfo of an EC P-256 key."
    )
    name: str = Field(min_length=1, max_length=100, description="The device's host name.")
    ownership: str = Field(default="managed", description="managed or personal (BYOD).")
    posture: dict[str, Any] | None = Field(
        default=None, description="The posture document (docs/devices.md); validated strictly."
    )


class EnrolOut(BaseModel):
    device_id: str
    certificate: str
    ca_certificate: str
    certificate_expires_at: str
    report_interval_seconds: int
    state: str
    reasons: list[str]


class ReportOut(BaseModel):
    state: str
    compliant: bool
    reasons: list[str]
    certificate: str | None
    certificate_expires_at: str | None


class TokenIn(BaseModel):
    user: str = Field(min_length=1, max_length=64)


class TokenOut(BaseModel):
    token: str
    expires_at: str


class QuarantineIn(BaseModel):
    reason: str = Field(default="", max_length=200)


class Changed(BaseModel):
    changed: bool


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/devices/enrol", response_model=EnrolOut, status_code=201)
def enrol(body: EnrolIn, request: Request, svc: Services = Depends(services)) -> EnrolOut:
    """Enrol a device with a one-time token; returns its certificate and the CA's."""
    source = _source(request)
    subject = f"device-token:{hash_token(body.token)[:12]}"
    if svc.regulator.banned(subject, source):
        raise InvalidEnrolmentToken("the enrolment token is unknown, used or expired")
    try:
        done = svc.device_enrolment.enrol(
            token=body.token,
            public_key_pem=body.public_key,
            name=body.name,
            ownership=body.ownership,
            posture=body.posture,
            source_ip=source,
        )
    except InvalidEnrolmentToken:
        svc.regulator.record_failure(subject, source)
        raise
    return EnrolOut(
        device_id=done.device.device_id,
        certificate=done.certificate.pem,
        ca_certificate=done.ca_certificate_pem,
        certificate_expires_at=done.certificate.not_after.isoformat(),
        report_interval_seconds=svc.settings.devices.report_interval_seconds,
        state=str(done.device.state),
        reasons=list(done.device.reasons),
    )


@router.post("/devices/{device_id}/reports", response_model=ReportOut)
async def report(device_id: str, request: Request, svc: Services = Depends(services)) -> ReportOut:
    """A signed posture report: the body is the compact JWS itself (ES256, device key)."""
    raw = b""
    async for chunk in request.stream():  # read no further than a report can be
        raw += chunk
        if len(raw) > MAX_REPORT_BYTES:
            raise ReportMalformed(f"the report is larger than {MAX_REPORT_BYTES} bytes")
    try:
        text = raw.decode("ascii").strip()
        if text.startswith('"'):  # a client that JSON-encoded the string
            text = str(json.loads(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportMalformed("expected the compact JWS as the body") from exc
    outcome = await run_in_threadpool(svc.device_enrolment.report, device_id, text)
    renewed = outcome.certificate
    return ReportOut(
        state=str(outcome.state),
        compliant=outcome.compliant,
        reasons=list(outcome.reasons),
        certificate=None if renewed is None else renewed.pem,
        certificate_expires_at=None if renewed is None else renewed.not_after.isoformat(),
    )


@router.post("/devices/tokens", response_model=TokenOut, status_code=201)
def create_token(
    body: TokenIn, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> TokenOut:
    """A one-time enrolment token for a user's device (shown once)."""
    issued = svc.device_enrolment.create_token(body.user, actor=admin.actor)
    return TokenOut(token=issued.token, expires_at=issued.expires_at.isoformat())


@router.get("/devices")
def list_devices(
    user: str | None = Query(None, max_length=64),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> list[dict[str, Any]]:
    """Every enrolled device (of one user with ``?user=``), newest first."""
    return [d.to_json() for d in svc.devices.list_devices(username=user)]


@router.get("/devices/policies")
def list_policies(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[dict[str, Any]]:
    """The compliance policy in force for each platform."""
    return [p.to_json() for p in svc.devices.policies()]


@router.get("/devices/policies/{platform}")
def get_policy(
    platform: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> dict[str, Any]:
    return svc.devices.policy(platform).to_json()


@router.put("/devices/policies/{platform}")
def put_policy(
    platform: str,
    body: dict[str, Any] = Body(..., description="The requirements to change (others kept)."),
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> dict[str, Any]:
    """Change a platform's requirements; its devices are judged again at once."""
    return svc.devices.set_policy(platform, body, actor=admin.actor).to_json()


@router.get("/devices/{device_id}")
def get_device(
    device_id: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> dict[str, Any]:
    return svc.devices.get(device_id).to_json()


@router.post("/devices/{device_id}/quarantine", response_model=Changed)
def quarantine(
    device_id: str,
    body: QuarantineIn | None = None,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> Changed:
    """Quarantine a device: refused wherever a compliant device is required, until released."""
    reason = body.reason if body is not None else ""
    return Changed(changed=svc.devices.quarantine(device_id, actor=admin.actor, reason=reason))


@router.post("/devices/{device_id}/release", response_model=Changed)
def release(
    device_id: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> Changed:
    return Changed(changed=svc.devices.release(device_id, actor=admin.actor))


@router.delete("/devices/{device_id}", status_code=204)
def remove(
    device_id: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> None:
    """Forget a device: its certificate and reports are refused from now on."""
    svc.devices.remove(device_id, actor=admin.actor)


@router.get("/reports/devices")
def inventory(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> dict[str, Any]:
    """Devices per state, % compliant, devices that stopped reporting (stable names)."""
    return svc.devices.inventory().to_json()
