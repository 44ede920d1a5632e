"""Console: the assertion signing keys, with a rotate button. Admins only.

Retiring a key (for a suspected compromise) stays on the command line and the API, where
it takes a deliberate kid: a misclick here must not break every upstream's verification.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

_PAGE = "/console/signing-keys"


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services
    gateway = services.settings.gateway

    async def show(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        keys = await run_in_threadpool(services.keys.list)
        return ctx.render(
            request,
            "console/signing_keys.html",
            {
                "keys": list(reversed(keys)),  # newest first: the active key on top
                "overlap_minutes": gateway.signing_key_overlap_minutes,
                "rotation_days": gateway.signing_key_rotation_days,
                "flash": request.query_params.get("flash", "")[:200],
            },
            signed_in=me,
        )

    async def rotate(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        form = await ctx.csrf_form(request, back=("Signing keys", _PAGE), signed_in=me)
        if isinstance(form, Response):
            return form
        overlap = timedelta(minutes=gateway.signing_key_overlap_minutes)
        try:
            rotation = await run_in_threadpool(
                lambda: services.keys.rotate(actor=f"user:{me.user.name}", overlap=overlap)
            )
        except NeverTrustError as exc:
            return ctx.render(
                request,
                "message.html",
                {"title": "Key not rotated", "message": exc.message},
                status_code=exc.http_status,
                signed_in=me,
            )
        flash = (
            f"Rotated: {rotation.active.kid} signs from now on; "
            f"{len(rotation.replaced)} replaced key(s) stay in the JWKS for "
            f"{gateway.signing_key_overlap_minutes} minutes."
        )
        return RedirectResponse(f"{_PAGE}?flash={quote(flash)}", status_code=303)

    return [
        Route(_PAGE, show, methods=["GET"]),
        Route(_PAGE + "/rotate", rotate, methods=["POST"]),
    ]
