"""Console: the device inventory with quarantine and release, and enrolment tokens.

Admins only. Quarantine and release are CSRF-checked POSTs answered with a redirect;
a new enrolment token is shown once, in the response that made it.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.devices import EnrolmentToken
from nevertrust.errors import NeverTrustError
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

_PAGE = "/console/devices"


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    async def page(
        request: Request,
        me: SignedIn,
        *,
        issued: EnrolmentToken | None = None,
        error: str = "",
        status_code: int = 200,
    ) -> Response:
        devices = await run_in_threadpool(services.devices.list_devices)
        inventory = await run_in_threadpool(services.devices.inventory)
        policies = await run_in_threadpool(services.devices.policies)
        return ctx.render(
            request,
            "console/devices.html",
            {
                "devices": devices,
                "inventory": inventory,
                "policies": policies,
                "issued": issued,
                "error": error,
                "flash": request.query_params.get("flash", "")[:200],
            },
            signed_in=me,
            status_code=status_code,
        )

    async def show(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        return me if not isinstance(me, SignedIn) else await page(request, me)

    async def change(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        form = await ctx.csrf_form(request, back=("Devices", _PAGE), signed_in=me)
        if isinstance(form, Response):
            return form
        device_id = request.path_params["device_id"][:64]
        action = request.path_params["action"]
        if action not in ("quarantine", "release"):
            return Response(status_code=404)
        actor = f"user:{me.user.name}"
        try:
            if action == "quarantine":
                reason = str(form.get("reason", ""))[:200]
                done = await run_in_threadpool(
                    lambda: services.devices.quarantine(device_id, actor=actor, reason=reason)
                )
                flash = f"Device {device_id} " + ("quarantined." if done else "already was.")
            else:
                done = await run_in_threadpool(
                    lambda: services.devices.release(device_id, actor=actor)
                )
                flash = f"Device {device_id} " + ("released." if done else "was not quarantined.")
        except NeverTrustError as exc:
            flash = exc.message
        return RedirectResponse(f"{_PAGE}?flash={quote(flash)}", status_code=303)

    async def token(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        form = await ctx.csrf_form(request, back=("Devices", _PAGE), signed_in=me)
        if isinstance(form, Response):
            return form
        user = str(form.get("user", "")).strip()[:64]
        try:
            issued = await run_in_threadpool(
                lambda: services.device_enrolment.create_token(user, actor=f"user:{me.user.name}")
            )
        except NeverTrustError as exc:
            return await page(request, me, error=exc.message, status_code=exc.http_status)
        return await page(request, me, issued=issued)

    return [
        Route(_PAGE, show, methods=["GET"]),
        Route(_PAGE + "/tokens", token, methods=["POST"]),
        Route(_PAGE + "/{device_id}/{action:str}", change, methods=["POST"]),
    ]
