"""/api/v1/policies: apply, validate, history, rollback, schema, what-if, replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.errors import InvalidInput
from nevertrust.pdp import json_schema
from nevertrust.pdp._durations import parse_duration
from nevertrust.policy import RequestSpec, decision_json
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["policy"])
_YAML = Body(..., media_type="application/yaml", max_length=2_000_000)


class VersionOut(BaseModel):
    version: int
    applied_at: datetime
    applied_by: str
    source: str
    summary: list[str]
    document: str | None = None


class AppliedOut(BaseModel):
    version: int | None = Field(description="Null for a dry run or an unchanged document.")
    summary: list[str]
    warnings: list[str]


class ValidOut(BaseModel):
    valid: bool
    policies: int
    rules: int
    warnings: list[str]


class WhatIfIn(BaseModel):
    request: RequestSpec
    draft: str | None = Field(default=None, description="Decide under this draft policy YAML.")


def _version(v: Any, *, with_document: bool) -> VersionOut:
    return VersionOut(
        version=v.version,
        applied_at=v.applied_at,
        applied_by=v.applied_by,
        source=v.source,
        summary=v.summary.splitlines(),
        document=v.document if with_document else None,
    )


@router.get("/policies", response_model=list[VersionOut])
def history(
    limit: int = Query(50, ge=1, le=500),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> list[VersionOut]:
    """Policy versions, newest (in force) first."""
    return [_version(v, with_document=False) for v in svc.policy.history(limit=limit)]


@router.get("/policies/active", response_model=VersionOut | None)
def active(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> VersionOut | None:
    found = svc.policy.active()
    return None if found is None else _version(found, with_document=True)


@router.get("/policies/schema")
def schema(_: Admin = Depends(current_admin)) -> dict[str, Any]:
    """JSON Schema of policy documents."""
    return json_schema()


@router.get("/policies/{version}", response_model=VersionOut)
def get_version(
    version: int, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> VersionOut:
    return _version(svc.policy.get(version), with_document=True)


@router.post("/policies", response_model=AppliedOut)
def apply(
    document: str = _YAML,
    dry_run: bool = Query(False),
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> AppliedOut:
    """Validate a policy document and put it in force (rejected whole on any error)."""
    result = svc.policy.apply(document, file="request-body", actor=admin.actor, dry_run=dry_run)
    return AppliedOut(
        version=result.version, summary=list(result.summary), warnings=list(result.warnings)
    )


@router.post("/policies/validate", response_model=ValidOut)
def validate(
    document: str = _YAML, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> ValidOut:
    parsed, warnings = svc.policy.validate(document, file="request-body")
    return ValidOut(
        valid=True,
        policies=len(parsed.policies),
        rules=sum(len(p.rules) for p in parsed.policies),
        warnings=list(warnings),
    )


@router.post("/policies/rollback/{version}", response_model=AppliedOut)
def rollback(
    version: int, svc: Services = Depends(services), admin: Admin = Depends(current_admin)
) -> AppliedOut:
    result = svc.policy.rollback(version, actor=admin.actor)
    return AppliedOut(
        version=result.version, summary=list(result.summary), warnings=list(result.warnings)
    )


@router.post("/policies/what-if")
def what_if(
    body: WhatIfIn, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> dict[str, Any]:
    """The decision, with its explanation, for a described request."""
    return decision_json(svc.policy.what_if(body.request, draft=body.draft))


@router.post("/policies/replay")
def replay(
    document: str = _YAML,
    since: str = Query("7d", description="How far back, e.g. 24h or 7d."),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> dict[str, object]:
    """Recorded gateway decisions decided again under a draft: what would change."""
    try:
        window = timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise InvalidInput(f"since: {exc}") from exc
    return svc.policy.replay(document, since=window).to_json()
