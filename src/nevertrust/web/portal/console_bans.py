"""Console: sign-in bans in force, each with a lift button. Admins only."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    admin = ctx.admin_gate

    async def show(request: Request) -> Response:
        me = await admin(request)
        if not isinstance(me, SignedIn):
            return me
        bans = await run_in_threadpool(services.regulator.list_bans)
        policy = services.regulator.policy
        return ctx.render(
            request,
            "console/bans.html",
            {
                "bans": bans,
                "policy": policy,
                "flash": request.query_params.get("flash", "")[:200],
            },
            signed_in=me,
        )

    async def lift(request: Request) -> Response:
        me = await admin(request)
        if not isinstance(me, SignedIn):
            return me
        form = await request.form()
        subject = str(form.get("subject", ""))[:200]
        try:
            ctx.check_csrf(request, str(form.get("csrf_token", "")) or None)
            lifted = await run_in_threadpool(
                lambda: services.regulator.lift(subject, actor=f"user:{me.user.name}")
            )
        except NeverTrustError as exc:
            return ctx.render(
                request,
                "message.html",
                {"title": "Ban not lifted", "message": exc.message},
                status_code=exc.http_status,
                signed_in=me,
            )
        flash = f"Lifted the ban on {subject}." if lifted else f"No ban in force on {subject}."
        return RedirectResponse(f"/console/bans?flash={quote(flash)}", status_code=303)

    return [
        Route("/console/bans", show, methods=["GET"]),
        Route("/console/bans/lift", lift, methods=["POST"]),
    ]
