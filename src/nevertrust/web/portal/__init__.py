"""The portal at ``auth.<base domain>``: sign-in, hand-off, home, console."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from nevertrust.web.portal import (
    account,
    auth_pages,
    console,
    console_bans,
    console_devices,
    console_gateway,
    console_identity,
    console_keys,
    console_sessions,
    home,
    mfa_pages,
    webauthn_routes,
)
from nevertrust.web.portal._context import SESSION_COOKIE, PortalContext

__all__ = ["SESSION_COOKIE", "PortalContext", "build_portal"]

_STATIC = Path(__file__).resolve().parent.parent / "static"


def build_portal(ctx: PortalContext, *, api: object) -> Starlette:
    return Starlette(
        routes=[
            *auth_pages.routes(ctx),
            *mfa_pages.routes(ctx),
            *webauthn_routes.routes(ctx),
            *home.routes(ctx),
            *account.routes(ctx),
            *console.routes(ctx),
            *console_bans.routes(ctx),
            *console_sessions.routes(ctx),
            *console_identity.routes(ctx),
            *console_devices.routes(ctx),
            *console_keys.routes(ctx),
            *console_gateway.routes(ctx),
            Mount("/static", StaticFiles(directory=str(_STATIC)), name="static"),
            Mount("/api/v1", app=api),  # type: ignore[arg-type]
        ]
    )
