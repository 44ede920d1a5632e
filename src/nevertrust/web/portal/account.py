"""/account: a signed-in person's own second factors, sessions and devices.

Every change is a CSRF-checked POST answered with a redirect (so a reload repeats
nothing), except new recovery codes: those exist only in that one response.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import NeverTrustError
from nevertrust.identity import InvalidOtp, SessionKind, SessionRecord, TotpAlreadyEnrolled
from nevertrust.web.portal import account_devices
from nevertrust.web.portal._context import SESSION_COOKIE, PortalContext, SignedIn
from nevertrust.web.portal.webauthn_routes import passkeys_context

__all__ = ["routes"]

# Outcomes shown after a redirect. Fixed messages chosen by key, never text from the URL,
# so nobody can craft a link that makes this page say something of theirs.
_DONE = {
    "totp-started": "Scan the QR code with your authenticator app, then enter a code below.",
    "totp-enrolled": "Authenticator app set up. You will be asked for a code when you sign in.",
    "totp-removed": "Authenticator app removed.",
    "totp-exists": "You already have an authenticator app. Remove it first to set up another.",
    "session-revoked": "That session is signed out.",
    "session-gone": "That session had already ended.",
}
_BACK = "/account"  # where a step-up demanded by a factor change returns to
_PREFIX = 16  # characters of a session hash that name it in the form


def _sessions(records: list[SessionRecord], current: SessionRecord) -> list[dict[str, Any]]:
    """Portal sessions (one per browser), newest first, with how many apps each reached."""
    apps: dict[str, int] = {}
    for r in records:
        if r.kind is SessionKind.APP and r.parent_hash:
            apps[r.parent_hash] = apps.get(r.parent_hash, 0) + 1
    portal = [r for r in records if r.kind is SessionKind.PORTAL]
    portal.sort(key=lambda r: r.created_at, reverse=True)
    return [
        {
            "record": r,
            "prefix": r.id_hash[:_PREFIX],
            "current": r.id_hash == current.id_hash,
            "apps": apps.get(r.id_hash, 0),
        }
        for r in portal
    ]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    def page_data(me: SignedIn) -> dict[str, Any]:
        name = me.user.name
        return {
            "status": services.totp.status(name)[0],
            "enrolment": services.totp.pending_enrolment(name),
            "sessions": _sessions(list(services.sessions.list_sessions(username=name)), me.session),
            # From the database, not the URL: a group of theirs requires a second factor.
            "must_enrol": services.auth.must_enrol_mfa(me.user),
            **passkeys_context(ctx, me),
            **account_devices.devices_context(ctx, me),
        }

    async def show(
        request: Request,
        me: SignedIn,
        *,
        status_code: int = 200,
        error: str = "",
        new_codes: list[str] | None = None,
    ) -> Response:
        data = await run_in_threadpool(page_data, me)
        done = _DONE.get(request.query_params.get("done", ""), "")
        return ctx.render(
            request,
            "account.html",
            {**data, "done": done, "error": error, "new_codes": new_codes or []},
            status_code=status_code,
            signed_in=me,
        )

    async def signed_in_or_login(request: Request) -> SignedIn | Response:
        me = await run_in_threadpool(ctx.signed_in, request)
        return RedirectResponse("/login", status_code=303) if me is None else me

    async def account(request: Request) -> Response:
        me = await signed_in_or_login(request)
        return me if isinstance(me, Response) else await show(request, me)

    async def checked_form(
        request: Request, *, fresh_factor: bool = False
    ) -> tuple[SignedIn, dict[str, str]] | Response:
        """The signed-in user and the form, once the CSRF token is right; with
        ``fresh_factor``, also a recent second-factor sign-in (else off to /stepup)."""
        me = await signed_in_or_login(request)
        if isinstance(me, Response):
            return me
        form = await ctx.csrf_form(request, back=("Back", _BACK), signed_in=me)
        if isinstance(form, Response):
            return form
        if fresh_factor:
            again = await run_in_threadpool(ctx.fresh_factor_required, me, back=_BACK)
            if again is not None:
                return again
        return me, {k: str(v)[:200] for k, v in form.items() if isinstance(v, str)}

    def back(done: str) -> Response:
        return RedirectResponse(f"/account?done={done}", status_code=303)

    async def totp_enroll(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        me, _ = checked
        actor = f"user:{me.user.name}"
        try:
            await run_in_threadpool(
                lambda: services.totp.begin_enrolment(me.user.name, actor=actor)
            )
        except TotpAlreadyEnrolled:
            return back("totp-exists")
        return back("totp-started")

    async def totp_confirm(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        me, form = checked
        try:
            await run_in_threadpool(
                lambda: services.totp.confirm(
                    me.user.name, form.get("otp", ""), source_ip=ctx.client_ip(request)
                )
            )
        except InvalidOtp as exc:
            return await show(request, me, status_code=400, error=exc.message)
        except NeverTrustError as exc:  # nothing pending (confirmed in another tab)
            return await show(request, me, status_code=409, error=exc.message)
        return back("totp-enrolled")

    async def totp_remove(request: Request) -> Response:
        checked = await checked_form(request, fresh_factor=True)
        if isinstance(checked, Response):
            return checked
        me, _ = checked
        actor = f"user:{me.user.name}"
        await run_in_threadpool(lambda: services.totp.remove(me.user.name, actor=actor))
        return back("totp-removed")

    async def recovery_codes(request: Request) -> Response:
        checked = await checked_form(request, fresh_factor=True)
        if isinstance(checked, Response):
            return checked
        me, _ = checked
        actor = f"user:{me.user.name}"
        codes = await run_in_threadpool(
            lambda: services.recovery_codes.generate(me.user.name, actor=actor)
        )
        return await show(request, me, new_codes=codes)

    async def revoke_session(request: Request) -> Response:
        checked = await checked_form(request)
        if isinstance(checked, Response):
            return checked
        me, form = checked
        prefix = form.get("session", "")[:_PREFIX]
        revoked = await run_in_threadpool(
            lambda: services.sessions.revoke_session(
                me.user.name,
                prefix,
                actor=f"user:{me.user.name}",
                source_ip=ctx.client_ip(request),
            )
        )
        if revoked and me.session.id_hash.startswith(prefix):
            # Signed this very browser out: on to the sign-in page without the dead cookie.
            response = RedirectResponse("/login", status_code=303)
            ctx.set_cookie(response, SESSION_COOKIE, "", max_age=0)
            return response
        return back("session-revoked" if revoked else "session-gone")

    return [
        Route("/account", account, methods=["GET"]),
        Route("/account/totp/enroll", totp_enroll, methods=["POST"]),
        Route("/account/totp/confirm", totp_confirm, methods=["POST"]),
        Route("/account/totp/remove", totp_remove, methods=["POST"]),
        Route("/account/recovery-codes", recovery_codes, methods=["POST"]),
        Route("/account/sessions/revoke", revoke_session, methods=["POST"]),
        *account_devices.routes(ctx),
    ]
