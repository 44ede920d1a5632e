"""/account: a person's own devices, enrolling one without asking an admin, and binding
this browser to one.

"Enrol a device" makes a one-time enrolment token for the signed-in person and shows the
agent command that uses it, once. It needs a recent second-factor sign-in (like changing
second factors): otherwise a stolen session cookie could enrol the thief's machine as one
of this person's devices, which policies then trust.

``/account/devices/bind?proof=...`` is the link ``nevertrust agent bind-browser`` prints.
It needs the same fresh second factor, shows which device the proof names (checked, not
yet spent) and offers to register this computer's platform passkey as that device's;
``webauthn_routes`` runs the ceremony. Sessions opened with that passkey carry the device.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.devices.browser_binding import MAX_PROOF_CHARS
from nevertrust.devices.errors import BindProofRefused
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

    async def bind_page(request: Request) -> Response:
        proof = request.query_params.get("proof", "")[: MAX_PROOF_CHARS + 1]
        here = f"/account/devices/bind?{urlencode({'proof': proof})}"
        me = await run_in_threadpool(ctx.signed_in, request)
        if me is None:
            return RedirectResponse(f"/login?{urlencode({'next': here})}", status_code=303)
        again = await run_in_threadpool(ctx.fresh_factor_required, me, back=here)
        if again is not None:
            return again
        try:
            device = await run_in_threadpool(services.browser_binding.preview, me.user, proof)
        except BindProofRefused as exc:
            return ctx.render(
                request,
                "message.html",
                {"title": "This browser was not bound", "message": exc.message,
                 "links": [("My devices", "/account#devices")]},
                status_code=403,
                signed_in=me,
            )  # fmt: skip
        return ctx.render(
            request, "account_device_bind.html", {"device": device, "proof": proof}, signed_in=me
        )

    return [
        Route("/account/devices/enrol", enrol, methods=["POST"]),
        Route("/account/devices/bind", bind_page, methods=["GET"]),
    ]
