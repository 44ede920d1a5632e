"""The admin console: users, groups, apps and rules, audit log. Admins only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.apps import RuleRecord
from nevertrust.errors import NeverTrustError
from nevertrust.web.portal import console_policies
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

Handler = Callable[[Request, SignedIn], Awaitable[Response]]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    def admin_only(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            gate = await ctx.admin_gate(request)
            return gate if isinstance(gate, Response) else await handler(request, gate)

        return wrapped

    async def overview(request: Request, me: SignedIn) -> Response:
        users = await run_in_threadpool(services.directory.list_users)
        mfa = {s.user: s for s in await run_in_threadpool(services.totp.status)}
        groups = await run_in_threadpool(services.directory.list_groups)
        apps = await run_in_threadpool(services.catalog.list_apps)
        rules = await run_in_threadpool(services.catalog.list_rules)
        allowed: dict[str, list[RuleRecord]] = {}
        for rule in rules:
            allowed.setdefault(rule.app, []).append(rule)
        return ctx.render(
            request,
            "console/overview.html",
            {
                "users": users,
                "mfa": mfa,
                "groups": groups,
                "apps": [
                    (a, allowed.get(a.name, []), services.settings.app_url(a.name)) for a in apps
                ],
                "flash": request.query_params.get("flash", "")[:200],
            },
            signed_in=me,
        )

    async def audit(request: Request, me: SignedIn) -> Response:
        records = await run_in_threadpool(services.audit.tail, 200)
        return ctx.render(
            request, "console/audit.html", {"records": list(reversed(records))}, signed_in=me
        )

    async def audit_verify(request: Request, me: SignedIn) -> Response:
        report = await run_in_threadpool(services.audit.verify)
        return ctx.render(request, "console/verify.html", {"report": report}, signed_in=me)

    async def user_action(request: Request, me: SignedIn) -> Response:
        form = await ctx.csrf_form(request, signed_in=me)
        if isinstance(form, Response):
            return form
        name = request.path_params["name"]
        action = str(form.get("action", ""))
        actor = f"user:{me.user.name}"
        try:
            if action in ("disable", "enable"):
                await run_in_threadpool(
                    lambda: services.directory.set_enabled(name, action == "enable", actor=actor)
                )
                flash = f"User {name} {action}d."
            elif action == "revoke-sessions":
                count = await run_in_threadpool(
                    lambda: services.sessions.revoke_user_sessions(
                        name, actor=actor, source_ip=ctx.client_ip(request)
                    )
                )
                flash = f"Revoked {count} session(s) of {name}."
            elif action == "reset-mfa":
                done = await run_in_threadpool(lambda: services.mfa_reset.reset(name, actor=actor))
                flash = (
                    f"Removed every second factor of {name}."
                    if done.anything
                    else f"{name} had no second factor."
                )
            else:
                flash = f"Unknown action {action!r}."
        except NeverTrustError as exc:
            flash = exc.message
        return RedirectResponse(f"/console?flash={quote(flash)}", status_code=303)

    return [
        *console_policies.routes(ctx, admin_only),
        Route("/console", admin_only(overview), methods=["GET"]),
        Route("/console/audit", admin_only(audit), methods=["GET"]),
        Route("/console/audit/verify", admin_only(audit_verify), methods=["GET"]),
        Route("/console/users/{name}", admin_only(user_action), methods=["POST"]),
    ]
