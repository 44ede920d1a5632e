"""/api/v1/signing-keys: the keys that sign the gateway's identity assertions."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.gateway.models import KeyState, KeyView
from nevertrust.gateway.signing_keys import MAX_OVERLAP
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["gateway"])


class SigningKeyOut(BaseModel):
    kid: str = Field(description="Key id, as in the JWKS and the assertions' header")
    state: KeyState = Field(
        description="active: signs new assertions; retiring: replaced, still in the JWKS "
        "until retired_at; retired: no longer in the JWKS"
    )
    created_at: datetime
    retired_at: datetime | None = Field(description="When the key leaves (left) the JWKS")

    @classmethod
    def of(cls, view: KeyView) -> SigningKeyOut:
        return cls(
            kid=view.kid, state=view.state, created_at=view.created_at, retired_at=view.retired_at
        )


class RotateIn(BaseModel):
    overlap_minutes: int | None = Field(
        default=None,
        ge=0,
        le=int(MAX_OVERLAP.total_seconds() // 60),
        description="How long replaced keys stay in the JWKS "
        "(default: gateway.signing_key_overlap_minutes)",
    )


class RotationOut(BaseModel):
    active: SigningKeyOut = Field(description="The new key, signing from now on")
    replaced: list[SigningKeyOut] = Field(description="Keys it replaces, with when they leave")


@router.get("/signing-keys", response_model=list[SigningKeyOut])
def list_signing_keys(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[SigningKeyOut]:
    """Every signing key, oldest first, with its state now."""
    return [SigningKeyOut.of(v) for v in svc.keys.list()]


@router.post("/signing-keys/rotate", response_model=RotationOut)
def rotate_signing_key(
    body: RotateIn | None = None,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> RotationOut:
    """Sign with a new key from now on; replaced keys stay in the JWKS for the overlap
    (audited; every replica switches on the change event)."""
    minutes = body.overlap_minutes if body and body.overlap_minutes is not None else None
    if minutes is None:
        minutes = svc.settings.gateway.signing_key_overlap_minutes
    rotation = svc.keys.rotate(actor=admin.actor, overlap=timedelta(minutes=minutes))
    return RotationOut(
        active=SigningKeyOut.of(rotation.active),
        replaced=[SigningKeyOut.of(v) for v in rotation.replaced],
    )


@router.post("/signing-keys/{kid}/retire", response_model=SigningKeyOut)
def retire_signing_key(
    kid: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> SigningKeyOut:
    """Remove a key from the JWKS now (audited). 409 signing-key-in-use for the active
    key: rotate first. 404 unknown-signing-key for a kid that never existed."""
    return SigningKeyOut.of(svc.keys.retire(kid[:64], actor=admin.actor))
