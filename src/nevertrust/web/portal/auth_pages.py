"""Sign-in, hand-off to app hosts, and sign-out."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.identity import InvalidCredentials, SessionKind
from nevertrust.identity.device_cookies import DEVICE_COOKIE
from nevertrust.web.portal._context import PENDING_COOKIE, SESSION_COOKIE, PortalContext
from nevertrust.web.portal._flow import FlowParams, StepUpAsk, continue_url
from nevertrust.web.redirects import AppTarget, parse_app_target

__all__ = ["routes"]

_MAX_FIELD = 1024


def routes(ctx: PortalContext) -> list[Route]:
    settings = ctx.settings
    public_port = settings.public_port or settings.port

    def app_target(rd: str) -> AppTarget | None:
        return parse_app_target(
            rd,
            base_domain=settings.base_domain,
            scheme=settings.public_scheme,
            port=public_port,
            is_registered=lambda name: ctx.services.catalog.find_app(name) is not None,
        )

    def login_form(
        request: Request, *, error: str = "", status: int = 200, username: str = ""
    ) -> Response:
        return ctx.render(
            request,
            "login.html",
            {
                "error": error,
                "username": username,
                "rd": request.query_params.get("rd", "")[:4000],
                "state": request.query_params.get("state", "")[:200],
                "next": FlowParams.of(request.query_params).next,
            },
            status_code=status,
        )

    async def login_page(request: Request) -> Response:
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is not None:
            return RedirectResponse(continue_url(FlowParams.of(request.query_params)), 303)
        return login_form(request)

    async def login_submit(request: Request) -> Response:
        form = await ctx.csrf_form(request, back=("Sign in", "/login"))
        if isinstance(form, Response):
            return form
        username = str(form.get("username", ""))[:_MAX_FIELD].strip().lower()
        password = str(form.get("password", ""))[:_MAX_FIELD]
        rd = str(form.get("rd", ""))[:4000]
        state = str(form.get("state", ""))[:200]
        flow = FlowParams(rd=rd, state=state, next=FlowParams.of(form).next)
        if not username or not password:
            request.scope["query_string"] = flow.query().encode()
            return login_form(
                request, error="Enter your user name and password.", status=400, username=username
            )
        previous = await run_in_threadpool(ctx.signed_in, request)
        try:
            issued = await run_in_threadpool(
                lambda: ctx.services.auth.login(
                    username,
                    password,
                    source_ip=ctx.client_ip(request),
                    user_agent=request.headers.get("user-agent", "")[:300],
                    device_cookie=request.cookies.get(DEVICE_COOKIE, ""),
                )
            )
        except InvalidCredentials:
            request.scope["query_string"] = flow.query().encode()
            return login_form(
                request, error="Wrong user name or password.", status=401, username=username
            )
        if previous is not None:
            # A browser signs in as one person at a time; end the earlier session.
            await run_in_threadpool(
                lambda: ctx.services.sessions.logout(
                    previous.session, actor=f"user:{previous.user.name}"
                )
            )
        if issued.record.kind is SessionKind.PENDING:
            response: Response = RedirectResponse(f"/login/mfa?{flow.query()}", status_code=303)
        else:
            response = RedirectResponse(continue_url(flow), status_code=303)
        ctx.issue_session_cookie(response, issued)
        ctx.harden(response)
        return response

    async def authorize(request: Request) -> Response:
        rd = request.query_params.get("rd", "")
        state = request.query_params.get("state", "")
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is None:
            query = urlencode({"rd": rd[:4000], "state": state[:200]})
            return RedirectResponse(f"/login?{query}", status_code=303)
        target = await run_in_threadpool(app_target, rd)
        if target is None or not state or len(state) > 200:
            # Not one of our registered apps (or a tampered link): go home, never elsewhere.
            return RedirectResponse("/", status_code=303)
        if await run_in_threadpool(ctx.services.auth.must_enrol_mfa, signed_in.user):
            return RedirectResponse("/account?enrol=required", status_code=303)
        ask = StepUpAsk.parse(
            request.query_params.get("methods", ""), request.query_params.get("max_age", "")
        )
        if ask is not None and not ask.satisfied_by(signed_in.session, ctx.services.clock.now()):
            flow = FlowParams(rd=rd[:4000], state=state)
            return RedirectResponse(f"/stepup?{flow.query(**ask.query_values())}", status_code=303)
        code = await run_in_threadpool(
            lambda: ctx.services.handoff.issue(
                signed_in.session,
                app_name=target.app,
                target=target.path,
                state=state,
            )
        )
        callback = (
            f"{settings.app_url(target.app)}/.nevertrust/callback?code={quote(code, safe='')}"
        )
        response = RedirectResponse(callback, status_code=303)
        ctx.harden(response)
        return response

    async def logout_page(request: Request) -> Response:
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is None:
            return RedirectResponse("/login", status_code=303)
        return ctx.render(request, "logout.html", {}, signed_in=signed_in)

    async def logout_submit(request: Request) -> Response:
        form = await ctx.csrf_form(request, back=("Back", "/logout"))
        if isinstance(form, Response):
            return form
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is not None:
            actor = f"user:{signed_in.user.name}"
            if form.get("everywhere"):
                await run_in_threadpool(
                    lambda: ctx.services.sessions.revoke_user_sessions(
                        signed_in.user.name, actor=actor, source_ip=ctx.client_ip(request)
                    )
                )
            else:
                await run_in_threadpool(
                    lambda: ctx.services.sessions.logout(
                        signed_in.session, actor=actor, source_ip=ctx.client_ip(request)
                    )
                )
        response = RedirectResponse("/login", status_code=303)
        # Same attributes as when it was set (HttpOnly, SameSite, Secure), not Starlette's
        # delete_cookie defaults, which drop HttpOnly and Secure.
        ctx.set_cookie(response, SESSION_COOKIE, "", max_age=0)
        ctx.set_cookie(response, PENDING_COOKIE, "", max_age=0)
        ctx.harden(response)
        return response

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/authorize", authorize, methods=["GET"]),
        Route("/logout", logout_page, methods=["GET"]),
        Route("/logout", logout_submit, methods=["POST"]),
    ]
