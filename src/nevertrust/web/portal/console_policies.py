"""Console: the policy in force, its history, a what-if form and applying a new version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.policy import RequestSpec, decision_json
from nevertrust.web.csrf import CsrfFailed
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]

Guard = Callable[
    [Callable[[Request, SignedIn], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]
]


def routes(ctx: PortalContext, admin_only: Guard) -> list[Route]:
    services = ctx.services

    async def page(
        request: Request,
        me: SignedIn,
        *,
        form: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
        error: str = "",
        flash: str = "",
        draft: str = "",
        status: int = 200,
    ) -> Response:
        active = await run_in_threadpool(services.policy.active)
        history = await run_in_threadpool(services.policy.history)
        apps = await run_in_threadpool(services.catalog.list_apps)
        return ctx.render(
            request,
            "console/policies.html",
            {
                "active": active,
                "history": history,
                "apps": [a.name for a in apps],
                "form": form or {"method": "GET", "path": "/", "auth_methods": "pwd"},
                "result": result,
                "error": error,
                "flash": flash,
                "draft": draft or (active.document if active else ""),
            },
            signed_in=me,
            status_code=status,
        )

    async def show(request: Request, me: SignedIn) -> Response:
        return await page(request, me)

    async def what_if(request: Request, me: SignedIn) -> Response:
        raw = await request.form()
        form = {k: str(v)[:500] for k, v in raw.items() if k != "csrf_token"}
        try:
            ctx.check_csrf(request, str(raw.get("csrf_token", "")) or None)
            spec = RequestSpec.model_validate(
                {
                    "user": form.get("user", ""),
                    "app": form.get("app", ""),
                    "method": form.get("method", "GET") or "GET",
                    "path": form.get("path", "/") or "/",
                    "source_ip": form.get("source_ip", ""),
                    "auth_methods": [
                        m.strip() for m in form.get("auth_methods", "pwd").split(",") if m.strip()
                    ],
                    "device": None
                    if form.get("device", "") in ("", "unknown")
                    else {"compliant": form.get("device") == "compliant"},
                }
            )
            decision = await run_in_threadpool(services.policy.what_if, spec)
        except CsrfFailed as exc:
            return await page(request, me, form=form, error=exc.message, status=403)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return await page(request, me, form=form, error=f"{where}: {first['msg']}", status=400)
        except NeverTrustError as exc:
            return await page(request, me, form=form, error=exc.message, status=exc.http_status)
        return await page(request, me, form=form, result=decision_json(decision))

    async def apply(request: Request, me: SignedIn) -> Response:
        raw = await request.form()
        draft = str(raw.get("document", ""))[:2_000_000]
        try:
            ctx.check_csrf(request, str(raw.get("csrf_token", "")) or None)
            result = await run_in_threadpool(
                lambda: services.policy.apply(draft, file="console", actor=f"user:{me.user.name}")
            )
        except NeverTrustError as exc:
            # Rejected whole: the policy in force is unchanged; keep the draft to fix it.
            return await page(request, me, error=exc.message, draft=draft, status=exc.http_status)
        flash = (
            f"Policy version {result.version} is in force."
            if result.version is not None
            else "No changes: this document is already in force."
        )
        return await page(request, me, flash=flash)

    return [
        Route("/console/policies", admin_only(show), methods=["GET"]),
        Route("/console/policies/what-if", admin_only(what_if), methods=["POST"]),
        Route("/console/policies/apply", admin_only(apply), methods=["POST"]),
    ]
