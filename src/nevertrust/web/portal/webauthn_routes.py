"""Passkeys in the portal: the JSON endpoints ``static/webauthn.js`` calls, and the forms
of the account page's passkey list.

Each ceremony is two POSTs. ``begin`` answers the options for ``navigator.credentials``
and puts the challenge's handle in a host-only HttpOnly cookie (script never sees it);
``finish`` brings the credential back and the cookie is cleared, whatever the outcome.
Every POST needs the CSRF token: in the ``X-CSRF-Token`` header for the JSON endpoints
(the page carries it in a data attribute), in the form field for the forms.

- register: a signed-in user adds a passkey (account page);
- login: the second step of sign-in, for a session still owing a factor (``nt_pending``);
- stepup: a signed-in user proves presence again for an app that asks for it;
- passwordless: sign-in with nothing but a passkey (user verification required), from the
  login page; no session is needed to start it;
- bind: a signed-in user registers this computer's platform passkey as one of their
  devices', with the proof ``nevertrust agent bind-browser`` made (``account_devices``
  shows the page); it finishes through ``register/finish``, the device id travelling on
  the server-side challenge, never through the browser.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from nevertrust.errors import Forbidden, InvalidInput, NeverTrustError, Unauthenticated
from nevertrust.identity import IssuedSession
from nevertrust.web.csrf import CsrfFailed
from nevertrust.web.portal._context import PortalContext, SignedIn
from nevertrust.web.portal._flow import FlowParams, continue_url

__all__ = ["HANDLE_COOKIE", "passkeys_context", "routes"]

HANDLE_COOKIE = "nt_webauthn"
_MAX_BODY = 64 * 1024  # a credential is a few kilobytes; RSA keys and attestation included


def passkeys_context(ctx: PortalContext, signed_in: SignedIn) -> dict[str, Any]:
    """What ``account_passkeys.html`` shows. Reads the database: call it in a thread."""
    return {"passkeys": list(ctx.services.webauthn.list(signed_in.user))}


class _NotSignedIn(Unauthenticated):
    code = "not-signed-in"


class _FactorNotFresh(Forbidden):
    code = "fresh-factor-required"


_Handler = Callable[[Request, SignedIn], Awaitable[Response]]
_Anonymous = Callable[[Request], Awaitable[Response]]


def _error(exc: NeverTrustError, *, redirect: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": exc.code, "detail": exc.message}
    if redirect:
        body["redirect"] = redirect
    return JSONResponse(body, status_code=exc.http_status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise InvalidInput(f"request too large: expected at most {_MAX_BODY} bytes")
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidInput("the request body is not JSON") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("the request body must be a JSON object")
    return parsed


def _credential(body: dict[str, Any]) -> dict[str, Any]:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise InvalidInput("missing 'credential': the browser's answer as a JSON object")
    return credential


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services
    webauthn = services.webauthn
    handle_age = int(webauthn.challenge_ttl.total_seconds())

    def user_agent(request: Request) -> str:
        return request.headers.get("user-agent", "")[:300]

    def json_endpoint(
        who: Callable[[Request], SignedIn | None] | None,
        handler: Callable[[Request, SignedIn], Awaitable[Response]]
        | Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """CSRF header, the right kind of session (``who`` None: none needed), and errors
        as JSON {error, detail}."""

        async def endpoint(request: Request) -> Response:
            try:
                ctx.check_csrf(request, request.headers.get("x-csrf-token") or None)
                if who is None:
                    response = await cast(_Anonymous, handler)(request)
                else:
                    found = await run_in_threadpool(who, request)
                    if found is None:
                        raise _NotSignedIn("your sign-in has expired: sign in again")
                    response = await cast(_Handler, handler)(request, found)
            except CsrfFailed as exc:
                response = _error(exc)
            except _NotSignedIn as exc:
                response = _error(exc, redirect="/login")
            except NeverTrustError as exc:
                response = _error(exc)
                if request.url.path.endswith("/finish"):
                    ctx.set_cookie(response, HANDLE_COOKIE, "", max_age=0)  # spent either way
            ctx.harden(response)
            return response

        return endpoint

    def options_response(options: str, handle: str) -> Response:
        response = Response(options, media_type="application/json")
        ctx.set_cookie(response, HANDLE_COOKIE, handle, max_age=handle_age)
        return response

    def finished(body: dict[str, Any], issued: IssuedSession) -> Response:
        flow = FlowParams.of(body)
        response = JSONResponse({"redirect": continue_url(flow)})
        ctx.issue_session_cookie(response, issued)
        ctx.set_cookie(response, HANDLE_COOKIE, "", max_age=0)
        return response

    def check_not_banned(request: Request, who: SignedIn) -> None:
        # A passkey cannot be guessed, but a name or address banned for guessing codes or
        # passwords stays banned for every factor: one rule, no way around it.
        if not services.auth.factor_attempt_allowed(who.user, ctx.client_ip(request)):
            raise Unauthenticated("too many failed sign-in attempts: try again later")

    # Registration (signed in, from the account page)

    async def register_begin(request: Request, me: SignedIn) -> Response:
        options, handle = await run_in_threadpool(webauthn.begin_registration, me.user)
        return options_response(options, handle)

    async def register_finish(request: Request, me: SignedIn) -> Response:
        body = await _body(request)
        record = await run_in_threadpool(
            lambda: webauthn.finish_registration(
                me.user,
                request.cookies.get(HANDLE_COOKIE, ""),
                _credential(body),
                str(body.get("name", ""))[:200],
                source_ip=ctx.client_ip(request),
            )
        )
        back = "/account#devices" if record.device_id else "/account#passkeys"
        response = JSONResponse({"id": record.id, "name": record.name, "redirect": back})
        ctx.set_cookie(response, HANDLE_COOKIE, "", max_age=0)
        return response

    # Binding this browser to a device (signed in, from /account/devices/bind)

    async def bind_begin(request: Request, me: SignedIn) -> Response:
        body = await _body(request)
        proof = str(body.get("proof", ""))
        source_ip = ctx.client_ip(request)

        def spend_and_begin() -> tuple[str, str]:
            if not ctx.factor_is_fresh(me):
                raise _FactorNotFresh("confirm your second factor again first: reload this page")
            device = services.browser_binding.spend(me.user, proof, source_ip=source_ip)
            return webauthn.begin_registration(me.user, device_id=device.device_id)

        options, handle = await run_in_threadpool(spend_and_begin)
        return options_response(options, handle)

    # Second step of sign-in (pending session)

    async def login_begin(request: Request, pending: SignedIn) -> Response:
        await run_in_threadpool(check_not_banned, request, pending)
        options, handle = await run_in_threadpool(webauthn.begin_authentication, pending.user.id)
        return options_response(options, handle)

    async def login_finish(request: Request, pending: SignedIn) -> Response:
        body = await _body(request)
        source_ip = ctx.client_ip(request)

        def verify_and_sign_in() -> IssuedSession:
            check_not_banned(request, pending)
            used = webauthn.finish_authentication(
                request.cookies.get(HANDLE_COOKIE, ""),
                _credential(body),
                user_id=pending.user.id,
                source_ip=source_ip,
            )
            return services.auth.complete_second_factor(
                pending.session,
                method="webauthn",
                source_ip=source_ip,
                user_agent=user_agent(request),
                device_id=used.device_id,
            )

        return finished(body, await run_in_threadpool(verify_and_sign_in))

    # Step-up (signed in)

    async def stepup_begin(request: Request, me: SignedIn) -> Response:
        options, handle = await run_in_threadpool(webauthn.begin_authentication, me.user.id)
        return options_response(options, handle)

    async def stepup_finish(request: Request, me: SignedIn) -> Response:
        body = await _body(request)
        source_ip = ctx.client_ip(request)

        def verify_and_step_up() -> IssuedSession:
            used = webauthn.finish_authentication(
                request.cookies.get(HANDLE_COOKIE, ""),
                _credential(body),
                user_id=me.user.id,
                source_ip=source_ip,
            )
            return services.auth.step_up(
                me.session,
                method="webauthn",
                source_ip=source_ip,
                user_agent=user_agent(request),
                device_id=used.device_id,
            )

        return finished(body, await run_in_threadpool(verify_and_step_up))

    # Passkey-first sign-in (no session yet, from the login page)

    async def passwordless_begin(request: Request) -> Response:
        options, handle = await run_in_threadpool(webauthn.begin_passwordless)
        return options_response(options, handle)

    async def passwordless_finish(request: Request) -> Response:
        body = await _body(request)
        source_ip = ctx.client_ip(request)

        def verify_and_sign_in() -> IssuedSession:
            # No ban check: a passkey cannot be guessed, and a name banned for password
            # guessing must not lock out the person holding its passkey.
            verified = webauthn.finish_passwordless(
                request.cookies.get(HANDLE_COOKIE, ""), _credential(body), source_ip=source_ip
            )
            previous = ctx.signed_in(request)
            issued = services.auth.login_with_passkey(
                verified.user,
                source_ip=source_ip,
                user_agent=user_agent(request),
                device_id=verified.passkey.device_id,
            )
            if previous is not None:
                # A browser signs in as one person at a time; end the earlier session.
                services.sessions.logout(previous.session, actor=f"user:{previous.user.name}")
            return issued

        return finished(body, await run_in_threadpool(verify_and_sign_in))

    # The account page's list: plain forms, answered with a redirect back

    async def manage(request: Request) -> Response:
        me = await run_in_threadpool(ctx.signed_in, request)
        if me is None:
            return RedirectResponse("/login", status_code=303)
        form = await ctx.csrf_form(request, back=("Back", "/account"), signed_in=me)
        if isinstance(form, Response):
            return form
        try:
            passkey = int(str(form.get("passkey", "")))
        except ValueError:
            passkey = 0
        actor = f"user:{me.user.name}"
        source_ip = ctx.client_ip(request)
        if not request.url.path.endswith("/rename"):
            again = await run_in_threadpool(ctx.fresh_factor_required, me, back="/account")
            if again is not None:
                return again
        try:
            if request.url.path.endswith("/rename"):
                name = str(form.get("name", ""))[:200]
                await run_in_threadpool(
                    lambda: webauthn.rename(me.user, passkey, name, actor, source_ip=source_ip)
                )
            else:
                await run_in_threadpool(
                    lambda: webauthn.remove(me.user, passkey, actor, source_ip=source_ip)
                )
        except NeverTrustError as exc:
            return ctx.render(
                request,
                "message.html",
                {"title": "Passkey not changed", "message": exc.message,
                 "links": [("Back", "/account")]},
                status_code=exc.http_status,
                signed_in=me,
            )  # fmt: skip
        return RedirectResponse("/account#passkeys", status_code=303)

    return [
        Route(
            "/webauthn/register/begin",
            json_endpoint(ctx.signed_in, register_begin),
            methods=["POST"],
        ),
        Route(
            "/webauthn/register/finish",
            json_endpoint(ctx.signed_in, register_finish),
            methods=["POST"],
        ),
        Route(
            "/account/devices/bind/begin",
            json_endpoint(ctx.signed_in, bind_begin),
            methods=["POST"],
        ),
        Route(
            "/webauthn/login/begin",
            json_endpoint(ctx.pending, login_begin),
            methods=["POST"],
        ),
        Route(
            "/webauthn/login/finish",
            json_endpoint(ctx.pending, login_finish),
            methods=["POST"],
        ),
        Route(
            "/webauthn/stepup/begin",
            json_endpoint(ctx.signed_in, stepup_begin),
            methods=["POST"],
        ),
        Route(
            "/webauthn/stepup/finish",
            json_endpoint(ctx.signed_in, stepup_finish),
            methods=["POST"],
        ),
        Route(
            "/webauthn/passwordless/begin",
            json_endpoint(None, passwordless_begin),
            methods=["POST"],
        ),
        Route(
            "/webauthn/passwordless/finish",
            json_endpoint(None, passwordless_finish),
            methods=["POST"],
        ),
        Route("/account/passkeys/remove", manage, methods=["POST"]),
        Route("/account/passkeys/rename", manage, methods=["POST"]),
    ]
