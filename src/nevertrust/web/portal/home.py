"""The portal home (apps you can reach), password setup links, keys and health."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from nevertrust.domain import AccessRequest, Effect, Principal
from nevertrust.identity import SessionRecord, WeakPassword
from nevertrust.pdp import compile_snapshot, decide
from nevertrust.web.portal._context import PortalContext

__all__ = ["routes"]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    def reachable_apps(principal: Principal, session: SessionRecord) -> list[tuple[str, str, str]]:
        """Apps this user may use (some after confirming their sign-in); the others are
        not shown at all. Decided like the gateway does: rules and the policy in force,
        with this session's sign-in methods and time."""
        view = services.catalog.view()
        snapshot = compile_snapshot(
            version=0, apps=view.apps, rules=view.rules, policies=services.policy.active_document()
        )
        now = services.clock.now()
        reachable = []
        for app in view.apps:
            request = AccessRequest(
                principal,
                app.name,
                auth_methods=frozenset(session.auth_methods),
                auth_time=session.auth_time,
            )
            if decide(request, snapshot, now).effect in (Effect.ALLOW, Effect.STEP_UP):
                reachable.append((app.name, services.settings.app_url(app.name), app.description))
        return reachable

    async def home(request: Request) -> Response:
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is None:
            return RedirectResponse("/login", status_code=303)
        user = signed_in.user
        principal = Principal(user.id, user.name, frozenset(user.groups), user.enabled)
        apps = await run_in_threadpool(reachable_apps, principal, signed_in.session)
        return ctx.render(request, "home.html", {"apps": apps}, signed_in=signed_in)

    async def setup_page(request: Request) -> Response:
        token = request.query_params.get("token", "")[:100]
        user = await run_in_threadpool(services.directory.setup_link_user, token) if token else None
        if user is None:
            return ctx.render(
                request,
                "message.html",
                {
                    "title": "This setup link is not valid",
                    "message": "It has expired or was already used. Ask an administrator for a "
                    "new one (nevertrust users setup-link NAME).",
                },
                status_code=404,
            )
        return ctx.render(request, "setup.html", {"user": user.name, "token": token, "error": ""})

    async def setup_submit(request: Request) -> Response:
        form = await ctx.csrf_form(request)
        if isinstance(form, Response):
            return form
        token = str(form.get("token", ""))[:100]
        password = str(form.get("password", ""))[:2048]
        confirm = str(form.get("confirm", ""))[:2048]
        user = await run_in_threadpool(services.directory.setup_link_user, token) if token else None
        if user is None:
            return ctx.render(
                request,
                "message.html",
                {
                    "title": "This setup link is not valid",
                    "message": "It has expired or was already used.",
                },
                status_code=404,
            )
        error = ""
        if password != confirm:
            error = "The two passwords differ."
        else:
            try:
                done = await run_in_threadpool(services.directory.complete_setup, token, password)
            except WeakPassword as exc:
                error = exc.message[:1].upper() + exc.message[1:] + "."
            else:
                if done is None:
                    error = "This setup link was used meanwhile."
        if error:
            return ctx.render(
                request,
                "setup.html",
                {"user": user.name, "token": token, "error": error},
                status_code=400,
            )
        return ctx.render(
            request,
            "message.html",
            {
                "title": "Password set",
                "message": f"You can now sign in as {user.name}.",
                "links": [("Sign in", "/login")],
            },
        )

    async def jwks(request: Request) -> Response:
        keys = await run_in_threadpool(services.keys.jwks)
        # Verifiers and caches may keep this document 5 minutes. That bounds how long a
        # key removed with `signing-keys retire` stays trusted, and it is well below the
        # rotation overlap (60 minutes by default): by the time a replaced key leaves the
        # JWKS, every copy still in use was fetched after the rotation, so it already
        # lists the new key, even at verifiers that only refetch when their copy expires.
        return JSONResponse(keys, headers={"cache-control": "public, max-age=300"})

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(services.db.ping)
        except Exception:  # noqa: BLE001 - health reports, never raises
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return [
        Route("/", home, methods=["GET"]),
        Route("/setup", setup_page, methods=["GET"]),
        Route("/setup", setup_submit, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
