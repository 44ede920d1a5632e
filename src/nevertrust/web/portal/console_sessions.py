"""Console: every active sign-in, with a one-click sign-out per session. Admins only.

What ended a session, and who did it, is in the audit log (identity:session:* records),
linked from the page.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

_ID = 16  # characters of a session hash that name it in the form


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    async def show(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        user = request.query_params.get("user", "")[:64] or None
        try:
            sessions = await run_in_threadpool(
                lambda: services.sessions.list_sessions(username=user)
            )
        except NeverTrustError as exc:
            links = [("All sessions", "/console/sessions")]
            return ctx.render(
                request,
                "message.html",
                {"title": "No such user", "message": exc.message, "links": links},
                status_code=exc.http_status,
                signed_in=me,
            )
        names = {u.id: u.name for u in await run_in_threadpool(services.directory.list_users)}
        rows = [
            {
                "id": s.id_hash[:_ID],
                "user": names.get(s.user_id, "?"),
                "session": s,
                "mine": s.id_hash == me.session.id_hash,
            }
            for s in sessions
        ]
        return ctx.render(
            request,
            "console/sessions.html",
            {
                "rows": rows,
                "user": user or "",
                "flash": request.query_params.get("flash", "")[:200],
            },
            signed_in=me,
        )

    async def revoke(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        form = await ctx.csrf_form(request, signed_in=me)
        if isinstance(form, Response):
            return form
        user = str(form.get("user", ""))[:64]
        session = str(form.get("session", ""))[:64]
        actor = f"user:{me.user.name}"
        try:
            ended = await run_in_threadpool(
                lambda: services.sessions.revoke_session(
                    user, session, actor=actor, source_ip=ctx.client_ip(request)
                )
            )
            flash = f"Signed out a session of {user}." if ended else "That session had ended."
        except NeverTrustError as exc:
            flash = exc.message
        return RedirectResponse(f"/console/sessions?flash={quote(flash)}", status_code=303)

    return [
        Route("/console/sessions", show, methods=["GET"]),
        Route("/console/sessions/revoke", revoke, methods=["POST"]),
    ]
