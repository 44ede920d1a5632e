"""Signing the command line in to an app host (``nevertrust connect``), loopback style.

RFC 8252 §7.3 (native apps, loopback redirect), on our hand-off codes:

1. ``nevertrust connect APP`` listens on ``127.0.0.1:P`` and has the person open
   ``APP/.nevertrust/cli-login?port=P&nonce=N``. Without an app session, the browser goes
   through the ordinary sign-in and comes back here.
2. The page asks "Allow the command line on this computer to connect to APP as USER?";
   the answer is a POST carrying a CSRF token bound to the app session, the nonce and the
   port (a page on another site can neither read nor compute it, and the page refuses to
   be framed, so it cannot be clicked through either).
3. On "Allow", a one-time code bound to the portal session, this app and ``state=N`` is
   minted and the browser is sent to ``http://127.0.0.1:P/callback?code=X``; only
   loopback, so the code never travels elsewhere.
4. The command line POSTs code and nonce to ``APP/.nevertrust/cli-token`` and gets a fresh
   app session: a new child of the portal session, so signing out ends it too. A code
   delivered to the listener by anyone else is useless without the nonce.

``GET /.nevertrust/cli-token`` (with the app cookie) says whether that session still
works, so the command line can tell "signed out" from "denied by policy" after a refusal.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, quote

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape

from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey, constant_time_equal, hash_token
from nevertrust.domain import Principal
from nevertrust.gateway.access import AccessChecker
from nevertrust.gateway.answers import problem_page
from nevertrust.gateway.http import header, send_html, send_json, send_redirect
from nevertrust.gateway.state import CachedSession
from nevertrust.identity import HandoffService, InvalidHandoff
from nevertrust.types import Receive, Scope, Send

__all__ = ["CLI_LOGIN_PATH", "CLI_PATHS", "CLI_TOKEN_PATH", "CliLogin", "SignIn"]

_log = logging.getLogger("nevertrust.gateway.cli_login")

CLI_LOGIN_PATH = "/.nevertrust/cli-login"
CLI_TOKEN_PATH = "/.nevertrust/cli-token"  # noqa: S105 - a path, not a secret
CLI_PATHS = frozenset({CLI_LOGIN_PATH, CLI_TOKEN_PATH})

# Sends the browser through the ordinary sign-in and back to the same URL.
SignIn = Callable[[], Awaitable[None]]

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_MAX_BODY = 8 * 1024
_env = Environment(
    loader=PackageLoader("nevertrust.gateway", "templates"),
    autoescape=select_autoescape(["html"]),
)
_page = _env.get_template("cli_login.html")


class _Unavailable(Exception):
    """Storage could not say whether the session is alive."""


def _port(text: str) -> int | None:
    # Unprivileged ports only: the command line binds an ephemeral one.
    return int(text) if text.isdigit() and len(text) <= 5 and 1024 <= int(text) <= 65535 else None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


async def _read_form(receive: Receive) -> dict[str, str] | None:
    """The urlencoded body's first value per field; None when larger than the limit."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > _MAX_BODY:
            return None
        if not message.get("more_body", False):
            break
    fields = parse_qs(body.decode("latin-1"), max_num_fields=20)
    return {name: values[0] for name, values in fields.items() if values}


class CliLogin:
    """The ``/.nevertrust/cli-login`` and ``/.nevertrust/cli-token`` control paths."""

    def __init__(
        self,
        *,
        access: AccessChecker,
        handoff: HandoffService,
        master_key: MasterKey,
        clock: Clock,
    ) -> None:
        self._access = access
        self._handoff = handoff
        self._master = master_key
        self._clock = clock

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        app_name: str,
        path: str,
        token: str,
        request_id: str,
        sign_in: SignIn,
    ) -> None:
        """Serve one of ``CLI_PATHS``; ``token`` is the request's app session cookie."""
        method = scope["method"]
        if path == CLI_LOGIN_PATH and method == "GET":
            await self._page(scope, send, app_name, token, request_id, sign_in)
        elif path == CLI_LOGIN_PATH and method == "POST":
            await self._confirm(scope, receive, send, app_name, token, request_id)
        elif path == CLI_TOKEN_PATH and method == "POST":
            await self._redeem(scope, receive, send, app_name, request_id)
        elif path == CLI_TOKEN_PATH and method == "GET":
            await self._status(send, app_name, token, request_id)
        else:
            page = problem_page(405, "Method not allowed", "", request_id=request_id)
            await send_html(send, page.status, page.html, headers=[(b"allow", b"GET, POST")])

    # The page and its answer

    async def _page(
        self, scope: Scope, send: Send, app: str, token: str, request_id: str, sign_in: SignIn
    ) -> None:
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=10)
        port = _port((params.get("port") or [""])[0])
        nonce = (params.get("nonce") or [""])[0]
        if port is None or not _NONCE.fullmatch(nonce):
            await self._bad_link(send, request_id)
            return
        try:
            signed_in = await self._signed_in(token, app)
        except _Unavailable:
            await self._unavailable(send, request_id)
            return
        if signed_in is None:
            await sign_in()
            return
        _, principal = signed_in
        html = _page.render(
            app=app,
            user=principal.name,
            port=port,
            nonce=nonce,
            csrf_token=self._csrf(token, nonce, port),
            request_id=request_id,
        )
        await send_html(send, 200, html)

    async def _confirm(
        self, scope: Scope, receive: Receive, send: Send, app: str, token: str, request_id: str
    ) -> None:
        form = await _read_form(receive)
        port = _port((form or {}).get("port", ""))
        nonce = (form or {}).get("nonce", "")
        if form is None or port is None or not _NONCE.fullmatch(nonce):
            await self._bad_link(send, request_id)
            return
        try:
            signed_in = await self._signed_in(token, app)
        except _Unavailable:
            await self._unavailable(send, request_id)
            return
        if signed_in is None or not constant_time_equal(
            self._csrf(token, nonce, port), form.get("csrf_token", "")
        ):
            page = problem_page(
                403,
                "This form has expired",
                "Run nevertrust connect again and use the link it prints.",
                request_id=request_id,
            )
            await send_html(send, page.status, page.html)
            return
        callback = f"http://127.0.0.1:{port}/callback"
        if form.get("action") != "allow":
            await send_redirect(send, callback + "?error=cancelled")
            return
        session, principal = signed_in
        try:
            code = await anyio.to_thread.run_sync(
                lambda: self._handoff.issue_for_app_session(
                    session.id_hash, app_name=app, state=nonce
                )
            )
        except InvalidHandoff as exc:
            page = problem_page(
                403, "Sign-in could not be completed", exc.message + ".", request_id=request_id
            )
            await send_html(send, page.status, page.html)
            return
        except Exception:  # noqa: BLE001 - storage down: explain, never grant
            _log.exception("cli_login_issue_failed")
            await self._unavailable(send, request_id)
            return
        _log.info("cli_login_allowed", extra={"app": app, "user": principal.name})
        await send_redirect(send, f"{callback}?code={quote(code, safe='')}")

    # The command line's side

    async def _redeem(
        self, scope: Scope, receive: Receive, send: Send, app: str, request_id: str
    ) -> None:
        form = await _read_form(receive) or {}
        code, nonce = form.get("code", ""), form.get("nonce", "")
        user_agent = (header(scope, b"user-agent") or b"").decode("latin-1")[:300]
        client_ip = _client_ip(scope)
        try:
            token, record, _ = await anyio.to_thread.run_sync(
                lambda: self._handoff.redeem(
                    code, app_name=app, state=nonce, source_ip=client_ip, user_agent=user_agent
                )
            )
        except InvalidHandoff as exc:
            await send_json(
                send,
                400,
                {"error": exc.code, "detail": exc.message, "request_id": request_id},
            )
            return
        except Exception:  # noqa: BLE001 - storage down: explain, never grant
            _log.exception("cli_token_redeem_failed")
            await send_json(
                send,
                503,
                {"error": "unavailable", "detail": "try again shortly", "request_id": request_id},
            )
            return
        self._access.remember(record)
        principal = self._access.snapshots.snapshot.principals.get(record.user_id)
        await send_json(
            send,
            200,
            {
                "token": token,
                "user": principal.name if principal is not None else "",
                "expires_at": record.expires_at.isoformat(),
            },
        )

    async def _status(self, send: Send, app: str, token: str, request_id: str) -> None:
        try:
            signed_in = await self._signed_in(token, app)
        except _Unavailable:
            await send_json(
                send,
                503,
                {"error": "unavailable", "detail": "try again shortly", "request_id": request_id},
            )
            return
        if signed_in is None:
            await send_json(
                send,
                401,
                {"error": "signed-out", "detail": "sign in again", "request_id": request_id},
            )
            return
        session, principal = signed_in
        compiled = self._access.snapshots.snapshot.policy.app(app)
        upstream = compiled.app.upstream if compiled is not None else ""
        await send_json(
            send,
            200,
            {
                "user": principal.name,
                "expires_at": session.expires_at.isoformat(),
                # Whether this app is reached through tunnels at all (a tcp:// upstream).
                "tunnel": upstream.startswith("tcp://"),
            },
        )

    # Helpers

    async def _signed_in(self, token: str, app: str) -> tuple[CachedSession, Principal] | None:
        """The live app session for ``app`` behind ``token`` and its person, or None."""
        if not token:
            return None
        try:
            session = await self._access.session(token)
        except Exception as exc:  # storage down: the caller fails closed
            _log.exception("cli_login_session_lookup_failed")
            raise _Unavailable from exc
        if session is None or not session.usable(self._clock.now()):
            return None
        if session.app_name != app or session.parent_hash is None:
            return None
        principal = self._access.snapshots.snapshot.principals.get(session.user_id)
        if principal is None or not principal.enabled:
            return None
        return session, principal

    def _csrf(self, token: str, nonce: str, port: int) -> str:
        """Bound to this app session, nonce and port (web/csrf.py binds to a cookie alike)."""
        message = f"{hash_token(token)}|{nonce}|{port}".encode()
        mac = self._master.sign("cli-login", message)
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    async def _bad_link(self, send: Send, request_id: str) -> None:
        page = problem_page(
            400,
            "This sign-in link is not valid",
            "Run nevertrust connect again and open the link it prints.",
            request_id=request_id,
        )
        await send_html(send, page.status, page.html)

    async def _unavailable(self, send: Send, request_id: str) -> None:
        page = problem_page(
            503,
            "Sign-in temporarily unavailable",
            "Your sign-in cannot be checked right now. Try again shortly.",
            request_id=request_id,
        )
        await send_html(send, page.status, page.html)
