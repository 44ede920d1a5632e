"""Console: service accounts and their keys, and the identity report. Admins only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.identity.api_keys import Scope, parse_duration
from nevertrust.identity.models import UserKind
from nevertrust.identity.reports import DEFAULT_INACTIVE_DAYS
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

_PAGE = "/console/service-accounts"
Handler = Callable[[Request, SignedIn, FormData], Awaitable[Response]]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services
    accounts = services.service_accounts

    admin = ctx.admin_gate

    async def page(
        request: Request,
        me: SignedIn,
        *,
        flash: str = "",
        error: str = "",
        issued: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        inventory = await run_in_threadpool(accounts.inventory)
        users = await run_in_threadpool(services.directory.list_users)
        people = [u.name for u in users if u.kind is UserKind.PERSON and u.enabled]
        return ctx.render(
            request,
            "console/service_accounts.html",
            {
                "accounts": inventory,
                "people": people,
                "scopes": [s.value for s in Scope],
                "flash": flash or request.query_params.get("flash", "")[:200],
                "error": error,
                "issued": issued,
            },
            signed_in=me,
            status_code=status,
        )

    def post(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Admin gate, CSRF check, and errors shown on the page with their status."""

        async def wrapped(request: Request) -> Response:
            me = await admin(request)
            if not isinstance(me, SignedIn):
                return me
            form = await request.form()
            try:
                ctx.check_csrf(request, str(form.get("csrf_token", "")) or None)
                return await handler(request, me, form)
            except NeverTrustError as exc:
                return await page(request, me, error=exc.message, status=exc.http_status)

        return wrapped

    def done(flash: str) -> Response:
        return RedirectResponse(f"{_PAGE}?flash={quote(flash)}", status_code=303)

    def field(form: FormData, name: str, limit: int = 200) -> str:
        return str(form.get(name, ""))[:limit].strip()

    async def show(request: Request) -> Response:
        me = await admin(request)
        return me if not isinstance(me, SignedIn) else await page(request, me)

    async def create(request: Request, me: SignedIn, form: FormData) -> Response:
        name = field(form, "name", 64)
        await run_in_threadpool(
            lambda: accounts.create(
                name,
                owner=field(form, "owner", 64),
                description=field(form, "description", 500),
                actor=f"user:{me.user.name}",
            )
        )
        return done(f"Created service account {name}.")

    async def set_owner(request: Request, me: SignedIn, form: FormData) -> Response:
        name, owner = request.path_params["name"], field(form, "owner", 64)
        await run_in_threadpool(
            lambda: accounts.set_owner(name, owner, actor=f"user:{me.user.name}")
        )
        return done(f"{name} is now owned by {owner}.")

    async def set_enabled(request: Request, me: SignedIn, form: FormData) -> Response:
        name, enable = request.path_params["name"], field(form, "action") == "enable"
        await run_in_threadpool(
            lambda: accounts.set_enabled(name, enable, actor=f"user:{me.user.name}")
        )
        return done(f"Service account {name} {'enabled' if enable else 'disabled'}.")

    async def issue(request: Request, me: SignedIn, form: FormData) -> Response:
        account = request.path_params["name"]
        expires_in = field(form, "expires_in", 20)
        ttl = parse_duration(expires_in, field="expires_in") if expires_in else None
        scopes = [str(s) for s in form.getlist("scope")][:5]
        plaintext, record = await run_in_threadpool(
            lambda: accounts.issue_key(
                account, field(form, "key_name", 63), scopes, ttl, actor=f"user:{me.user.name}"
            )
        )
        # Rendered, not redirected: the key must never travel in a URL or be shown twice.
        shown = {"key": plaintext, "prefix": record.prefix, "account": account}
        return await page(request, me, issued=shown, status=201)

    async def rotate(request: Request, me: SignedIn, form: FormData) -> Response:
        prefix = request.path_params["prefix"]
        grace = field(form, "grace", 20)
        delta = parse_duration(grace, field="grace") if grace else None
        plaintext, record = await run_in_threadpool(
            lambda: accounts.rotate_key(prefix, delta, actor=f"user:{me.user.name}")
        )
        shown = {"key": plaintext, "prefix": record.prefix, "replaces": prefix}
        return await page(request, me, issued=shown, status=201)

    async def revoke(request: Request, me: SignedIn, form: FormData) -> Response:
        prefix = request.path_params["prefix"]
        changed = await run_in_threadpool(
            lambda: accounts.revoke_key(prefix, actor=f"user:{me.user.name}")
        )
        return done(f"Revoked key {prefix}." if changed else f"Key {prefix} was already revoked.")

    async def report(request: Request) -> Response:
        me = await admin(request)
        if not isinstance(me, SignedIn):
            return me
        raw = request.query_params.get("inactive_days", "")
        context: dict[str, Any] = {"report": None, "error": ""}
        try:
            days = int(raw) if raw else DEFAULT_INACTIVE_DAYS
            context["report"] = await run_in_threadpool(
                lambda: services.reports.identity(inactive_days=days)
            )
        except ValueError:
            context["error"] = f"inactive days: expected a whole number, got {raw[:20]!r}"
        except NeverTrustError as exc:
            context["error"] = exc.message
        status = 400 if context["error"] else 200
        return ctx.render(
            request, "console/identity_report.html", context, signed_in=me, status_code=status
        )

    return [
        Route(_PAGE, show, methods=["GET"]),
        Route(_PAGE, post(create), methods=["POST"]),
        Route(_PAGE + "/keys/{prefix}/rotate", post(rotate), methods=["POST"]),
        Route(_PAGE + "/keys/{prefix}/revoke", post(revoke), methods=["POST"]),
        Route(_PAGE + "/{name}/owner", post(set_owner), methods=["POST"]),
        Route(_PAGE + "/{name}/enabled", post(set_enabled), methods=["POST"]),
        Route(_PAGE + "/{name}/keys", post(issue), methods=["POST"]),
        Route("/console/reports/identity", report, methods=["GET"]),
    ]
