"""/api/v1/gateway: where forward-auth is answered and to whom, and how apps are reached."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from nevertrust.app import Services
from nevertrust.gateway.overview import gateway_overview
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["gateway"])


@router.get("/gateway")
def show_gateway(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> dict[str, Any]:
    """Forward-auth endpoints and callers, trusted proxies, the mTLS listener, upstream
    settings, and each app's address and kind (web or TCP tunnel)."""
    return gateway_overview(svc.settings, svc.catalog.view().apps).as_json()
