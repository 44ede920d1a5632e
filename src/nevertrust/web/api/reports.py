"""/api/v1/reports: read-only reports for auditors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from nevertrust.app import Services
from nevertrust.identity.reports import DEFAULT_INACTIVE_DAYS
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/identity")
def identity(
    inactive_days: int = Query(DEFAULT_INACTIVE_DAYS, ge=1, le=3650),
    svc: Services = Depends(services),
    _: Admin = Depends(current_admin),
) -> dict[str, Any]:
    """Second-factor coverage, dormant people, unowned service accounts, stale keys.

    Field names are stable; docs/service-accounts.md describes each.
    """
    return svc.reports.identity(inactive_days=inactive_days).to_json()
