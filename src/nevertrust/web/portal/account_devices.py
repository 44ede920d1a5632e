"""/account: a person's own devices, and enrolling one without asking an admin.

"Enrol a device" makes a one-time enrolment token for the signed-in person and shows the
agent command that uses it, once. It needs a recent second-factor sign-in (like changing
second factors): otherwise a stolen session cookie could enrol the thief's machine as one
of this person's devices, which policies then trust.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["devices_context", "routes"]

_BACK = "/account"


def devices_context(ctx: PortalContext, me: SignedIn) -> dict[str, Any]:
    """The signed-in person's devices, for the account page (called off the event loop)."""
    return {"my_devices": list(ctx.services.devices.list_for_user(me.user.id))}


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    async def enrol(request: Request) -> Response:
        me = await run_in_threadpool(ctx.signed_in, request)
        if me is None:
            return RedirectResponse("/login", status_code=303)
        form = await ctx.csrf_form(request, back=("Back", _BACK), signed_in=me)
        if isinstance(form, Response):
            return form
        again = await run_in_threadpool(ctx.fresh_factor_required, me, back=_BACK)
        if again is not None:
            return again
        issued = await run_in_threadpool(
            lambda: services.device_enrolment.create_token(
                me.user.name, actor=f"user:{me.user.name}"
            )
        )
        command = (
            f"nevertrust agent enroll --server {ctx.settings.portal_url} --token {issued.token}"
        )
        return ctx.render(
            request,
            "account_device_enrol.html",
            {"issued": issued, "command": command},
            signed_in=me,
        )

    return [Route("/account/devices/enrol", enrol, methods=["POST"])]
