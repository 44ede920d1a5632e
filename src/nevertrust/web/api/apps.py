"""/api/v1/apps, access rules and declarative apply."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["catalog"])


class AppOut(BaseModel):
    name: str
    upstream: str
    description: str
    url: str
    allowed_groups: list[str]
    # Allowed groups whose members also need a compliant device for this app.
    compliant_device_groups: list[str] = Field(default_factory=list)


class AppIn(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    upstream: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=500)


class RuleIn(BaseModel):
    group: str = Field(min_length=1, max_length=64)
    require_compliant_device: bool | None = Field(
        default=None,
        description="Members also need a compliant device; null or absent keeps an existing "
        "rule's setting (off for a new rule).",
    )


class Changed(BaseModel):
    changed: bool


class ApplyOut(BaseModel):
    version: int | None
    changes: list[str]


def _apps(svc: Services) -> list[AppOut]:
    allowed: dict[str, list[str]] = {}
    device: dict[str, list[str]] = {}
    for rule in svc.catalog.list_rules():
        allowed.setdefault(rule.app, []).append(rule.group)
        if rule.require_compliant_device:
            device.setdefault(rule.app, []).append(rule.group)
    return [
        AppOut(
            name=a.name,
            upstream=a.upstream,
            description=a.description,
            url=svc.settings.app_url(a.name),
            allowed_groups=allowed.get(a.name, []),
            compliant_device_groups=device.get(a.name, []),
        )
        for a in svc.catalog.list_apps()
    ]


@router.get("/apps", response_model=list[AppOut])
def list_apps(svc: Services = Depends(services), _: Admin = Depends(current_admin)) -> list[AppOut]:
    return _apps(svc)


@router.post("/apps", response_model=AppOut, status_code=201)
def add_app(
    body: AppIn, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> AppOut:
    svc.catalog.add_app(
        body.name, upstream=body.upstream, description=body.description, actor=admin.actor
    )
    return next(a for a in _apps(svc) if a.name == body.name)


@router.delete("/apps/{name}", status_code=204)
def remove_app(
    name: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> None:
    svc.catalog.remove_app(name, actor=admin.actor)


@router.post("/apps/{name}/allow", response_model=Changed)
def allow(
    name: str,
    body: RuleIn,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> Changed:
    return Changed(
        changed=svc.catalog.set_rule(
            name,
            body.group,
            True,
            actor=admin.actor,
            origin="api",
            require_compliant_device=body.require_compliant_device,
        )
    )


@router.delete("/apps/{name}/allow/{group}", response_model=Changed)
def disallow(
    name: str, group: str, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> Changed:
    return Changed(changed=svc.catalog.set_rule(name, group, False, actor=admin.actor))


@router.post("/apply", response_model=ApplyOut)
def apply(
    document: str = Body(..., media_type="application/yaml", max_length=1_000_000),
    dry_run: bool = Query(False),
    prune: bool = Query(False),
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> ApplyOut:
    result = svc.apply.apply(
        document, file="request-body", actor=admin.actor, prune=prune, dry_run=dry_run
    )
    return ApplyOut(version=result.version, changes=list(result.changes))
