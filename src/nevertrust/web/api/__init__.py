"""The REST API under /api/v1 (OpenAPI at /api/v1/openapi.json)."""

from __future__ import annotations

from fastapi import FastAPI

from nevertrust import __version__
from nevertrust.app import Services
from nevertrust.web.api import (
    apps,
    audit,
    bans,
    devices,
    gateway,
    mfa,
    policies,
    reports,
    service_accounts,
    signing_keys,
    users,
)
from nevertrust.web.errors import install_error_handlers

__all__ = ["build_api"]


def build_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="NeverTrust API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.services = services
    api.include_router(users.router)
    api.include_router(mfa.router)
    api.include_router(apps.router)
    api.include_router(audit.router)
    api.include_router(bans.router)
    api.include_router(policies.router)
    api.include_router(service_accounts.router)
    api.include_router(reports.router)
    api.include_router(devices.router)
    api.include_router(signing_keys.router)
    api.include_router(gateway.router)
    install_error_handlers(api)
    return api
