"""The second step of sign-in (/login/mfa) and step-up for a signed-in user (/stepup).

Both ask for the same things: a code from an authenticator app (field ``otp``), a recovery
code in the same field, or a passkey (handled by ``webauthn_routes`` through script).
Wrong codes count against the brute-force bans exactly like wrong passwords.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.identity import InvalidCredentials, IssuedSession, SessionRecord, UserRecord
from nevertrust.web.csrf import CsrfFailed
from nevertrust.web.portal._context import PortalContext, SignedIn
from nevertrust.web.portal._flow import FlowParams, StepUpAsk, continue_url

__all__ = ["routes"]

_TOTP_CODE = re.compile(r"^\d{6}$")


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    def form(
        request: Request,
        who: SignedIn,
        *,
        mode: str,
        flow: FlowParams,
        ask: StepUpAsk | None = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        factors = services.auth.second_factors(who.user.id)
        usable = ask.usable_factors(factors) if ask is not None else factors
        return ctx.render(
            request,
            "second_factor.html",
            {
                "mode": mode,
                "error": error,
                "rd": flow.rd,
                "state": flow.state,
                "next": flow.next,
                "ask": ask,
                "has_otp": "otp" in usable,
                "has_passkey": "webauthn" in usable,
                "action": "/login/mfa" if mode == "login" else "/stepup",
                "user_name": who.user.name,
            },
            status_code=status,
            signed_in=who if mode == "stepup" else None,
        )

    def check_code(user: UserRecord, code: str, source_ip: str) -> str | None:
        """The method a valid code proves ("otp" or "recovery"), or None."""
        if not services.auth.factor_attempt_allowed(user, source_ip):
            return None
        if _TOTP_CODE.match(code):
            if services.totp.verify(user.id, code, source_ip=source_ip):
                return "otp"
        elif services.recovery_codes.redeem(user.id, code, source_ip=source_ip):
            return "recovery"
        services.auth.factor_failed(user, source_ip=source_ip)
        return None

    async def verified(
        request: Request, who: SignedIn, finish: Callable[[str], IssuedSession]
    ) -> IssuedSession | None:
        form_data = await request.form()
        code = re.sub(r"\s+", "", str(form_data.get("otp", "")))[:64]
        method = await run_in_threadpool(check_code, who.user, code, ctx.client_ip(request))
        if method is None:
            return None
        try:
            return await run_in_threadpool(finish, method)
        except InvalidCredentials:
            return None

    def expired(request: Request, message: str) -> Response:
        return ctx.render(
            request,
            "message.html",
            {"title": "Sign-in expired", "message": message, "links": [("Sign in", "/login")]},
            status_code=403,
        )

    async def csrf_ok(request: Request) -> bool:
        form_data = await request.form()
        try:
            ctx.check_csrf(request, str(form_data.get("csrf_token", "")) or None)
        except CsrfFailed:
            return False
        return True

    # Second step of sign-in

    async def login_mfa_page(request: Request) -> Response:
        pending = await run_in_threadpool(ctx.pending, request)
        if pending is None:
            return RedirectResponse(f"/login?{FlowParams.of(request.query_params).query()}", 303)
        return form(request, pending, mode="login", flow=FlowParams.of(request.query_params))

    async def submit_code(
        request: Request,
        who: SignedIn,
        *,
        mode: str,
        flow: FlowParams,
        finish: Callable[[SessionRecord, str, str, str], IssuedSession],
    ) -> Response:
        """Check the posted code; on success, ``finish`` issues the new session."""
        user_agent = request.headers.get("user-agent", "")[:300]
        source_ip = ctx.client_ip(request)
        issued = await verified(
            request, who, lambda method: finish(who.session, method, source_ip, user_agent)
        )
        if issued is None:
            return form(
                request,
                who,
                mode=mode,
                flow=flow,
                error="That code is not valid. Enter the current code from your app.",
                status=401,
            )
        response = RedirectResponse(continue_url(flow), status_code=303)
        ctx.issue_session_cookie(response, issued)  # also ends any pending sign-in
        ctx.harden(response)
        return response

    async def login_mfa_submit(request: Request) -> Response:
        flow = FlowParams.of(await request.form())
        if not await csrf_ok(request):
            return expired(request, "The form expired. Sign in again.")
        pending = await run_in_threadpool(ctx.pending, request)
        if pending is None:
            return expired(request, "The sign-in took too long or was already used.")
        return await submit_code(
            request,
            pending,
            mode="login",
            flow=flow,
            finish=lambda session, method, ip, agent: services.auth.complete_second_factor(
                session, method=method, source_ip=ip, user_agent=agent
            ),
        )

    # Step-up for a signed-in user

    async def stepup_page(request: Request) -> Response:
        flow = FlowParams.of(request.query_params)
        ask = StepUpAsk.parse(
            request.query_params.get("methods", ""), request.query_params.get("max_age", "")
        )
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is None:
            return RedirectResponse(f"/login?{flow.query()}", 303)
        return form(request, signed_in, mode="stepup", flow=flow, ask=ask)

    async def stepup_submit(request: Request) -> Response:
        flow = FlowParams.of(await request.form())
        if not await csrf_ok(request):
            return expired(request, "The form expired. Try again.")
        signed_in = await run_in_threadpool(ctx.signed_in, request)
        if signed_in is None:
            return RedirectResponse(f"/login?{flow.query()}", 303)
        return await submit_code(
            request,
            signed_in,
            mode="stepup",
            flow=flow,
            finish=lambda session, method, ip, agent: services.auth.step_up(
                session, method=method, source_ip=ip, user_agent=agent
            ),
        )

    return [
        Route("/login/mfa", login_mfa_page, methods=["GET"]),
        Route("/login/mfa", login_mfa_submit, methods=["POST"]),
        Route("/stepup", stepup_page, methods=["GET"]),
        Route("/stepup", stepup_submit, methods=["POST"]),
    ]
