"""/api/v1/service-accounts: machine identities and their API keys."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.identity import KeyView, ServiceAccount
from nevertrust.identity.api_keys import parse_duration
from nevertrust.identity.models import ApiKeyRecord
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(prefix="/service-accounts", tags=["service accounts"])


class KeyOut(BaseModel):
    prefix: str = Field(description="Identifies the key in lists, logs and audit; not secret")
    name: str
    scopes: list[str]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Written at most once a minute")
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked")
    stale: bool = Field(description="Expired, or unused for 30 days; see docs/service-accounts.md")

    @classmethod
    def of(cls, key: KeyView) -> KeyOut:
        return cls(
            prefix=key.prefix,
            name=key.name,
            scopes=list(key.scopes),
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            status=str(key.status),
            stale=key.stale,
        )


class IssuedKeyOut(KeyOut):
    key: str = Field(description="The full key. Shown this once; only its hash is stored")


class ServiceAccountOut(BaseModel):
    name: str
    description: str
    enabled: bool
    owner: str | None
    owner_problem: str | None = Field(
        description="null, no-owner, owner-missing, owner-not-a-person or owner-disabled"
    )
    groups: list[str]
    created_at: datetime
    keys: list[KeyOut]

    @classmethod
    def of(cls, account: ServiceAccount) -> ServiceAccountOut:
        return cls(
            name=account.name,
            description=account.description,
            enabled=account.enabled,
            owner=account.owner,
            owner_problem=account.owner_problem,
            groups=list(account.groups),
            created_at=account.created_at,
            keys=[KeyOut.of(k) for k in account.keys],
        )


class ServiceAccountIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    owner: str = Field(min_length=1, max_length=64, description="A person, enabled")
    description: str = Field(default="", max_length=500)


class OwnerIn(BaseModel):
    owner: str = Field(min_length=1, max_length=64)


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    scopes: list[str] = Field(min_length=1, max_length=10, examples=[["api:read"]])
    expires_in: str | None = Field(
        default=None, max_length=20, description="Like 30d or 12h; default 90d, at most 365d"
    )


class RotateIn(BaseModel):
    grace: str | None = Field(
        default=None, max_length=20, description="How long the old key keeps working; default 24h"
    )


class Revoked(BaseModel):
    changed: bool


def _issued(
    plaintext: str, record: ApiKeyRecord, svc: Services, response: Response
) -> IssuedKeyOut:
    # The secret is in this body only; keep it out of every cache.
    response.headers["cache-control"] = "no-store"
    view = KeyView.of(record, svc.clock.now(), superseded=False)
    return IssuedKeyOut(key=plaintext, **KeyOut.of(view).model_dump())


@router.get("", response_model=list[ServiceAccountOut])
def list_accounts(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[ServiceAccountOut]:
    return [ServiceAccountOut.of(a) for a in svc.service_accounts.inventory()]


@router.post("", response_model=ServiceAccountOut, status_code=201)
def create_account(
    body: ServiceAccountIn, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> ServiceAccountOut:
    account = svc.service_accounts.create(
        body.name, owner=body.owner, description=body.description, actor=admin.actor
    )
    return ServiceAccountOut.of(account)


@router.get("/{name}", response_model=ServiceAccountOut)
def get_account(
    name: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> ServiceAccountOut:
    return ServiceAccountOut.of(svc.service_accounts.get(name))


@router.put("/{name}/owner", response_model=ServiceAccountOut)
def set_owner(
    name: str,
    body: OwnerIn,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> ServiceAccountOut:
    return ServiceAccountOut.of(svc.service_accounts.set_owner(name, body.owner, actor=admin.actor))


@router.get("/{name}/keys", response_model=list[KeyOut])
def list_keys(
    name: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[KeyOut]:
    return [KeyOut.of(k) for k in svc.service_accounts.list_keys(name)]


@router.post("/{name}/keys", response_model=IssuedKeyOut, status_code=201)
def issue_key(
    name: str,
    body: KeyIn,
    response: Response,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> IssuedKeyOut:
    ttl = parse_duration(body.expires_in, field="expires_in") if body.expires_in else None
    plaintext, record = svc.service_accounts.issue_key(
        name, body.name, body.scopes, ttl, actor=admin.actor
    )
    return _issued(plaintext, record, svc, response)


@router.post("/keys/{prefix}/rotate", response_model=IssuedKeyOut, status_code=201)
def rotate_key(
    prefix: str,
    response: Response,
    body: RotateIn | None = None,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> IssuedKeyOut:
    grace = parse_duration(body.grace, field="grace") if body and body.grace else None
    plaintext, record = svc.service_accounts.rotate_key(prefix, grace, actor=admin.actor)
    return _issued(plaintext, record, svc, response)


@router.delete("/keys/{prefix}", response_model=Revoked)
def revoke_key(
    prefix: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> Revoked:
    return Revoked(changed=svc.service_accounts.revoke_key(prefix, actor=admin.actor))
