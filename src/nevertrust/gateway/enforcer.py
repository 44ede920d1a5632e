"""The gateway: an identity-aware reverse proxy for ``<app>.<base domain>`` hosts.

Hot path per request: cookie -> session cache -> snapshot principal -> PDP decision ->
queue audit record -> proxy with a signed assertion (``gateway/access.py`` does the middle,
shared with forward-auth, websockets and tunnels). The database is touched only when a
session id is seen for the first time by this process (and after it was invalidated).

Before sign-in, every host under the base domain behaves the same (redirect to the
portal), whether an app exists there or not, so probing reveals nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import parse_qs

import anyio.to_thread

from nevertrust.clock import Clock
from nevertrust.crypto import new_token
from nevertrust.domain import StepUp
from nevertrust.gateway.access import AccessChecker, Check, Outcome
from nevertrust.gateway.answers import denial_page, portal_location, problem_page
from nevertrust.gateway.assertion import ASSERTION_HEADER
from nevertrust.gateway.cli_login import CLI_PATHS, CliLogin
from nevertrust.gateway.client_certs import client_device
from nevertrust.gateway.http import (
    cookie_header,
    header,
    parse_cookies,
    send_html,
    send_redirect,
)
from nevertrust.gateway.live import LiveConnections
from nevertrust.gateway.pages import render_page
from nevertrust.gateway.paths import BadPath, normalise_path
from nevertrust.gateway.proxy import UpstreamError, UpstreamProxy
from nevertrust.gateway.request_ids import next_request_id
from nevertrust.gateway.websocket import proxy_websocket
from nevertrust.gateway.ws_refusal import refuse_handshake
from nevertrust.identity import HandoffService, InvalidHandoff
from nevertrust.types import Receive, Scope, Send

__all__ = ["APP_SESSION_COOKIE", "STATE_COOKIE", "Gateway", "GatewayConfig", "TunnelHandler"]

_log = logging.getLogger("nevertrust.gateway")

APP_SESSION_COOKIE = "nt_app_session"
STATE_COOKIE = "_nt_state"
OUR_COOKIES = frozenset({APP_SESSION_COOKIE, STATE_COOKIE})
_CONTROL_PREFIX = "/.nevertrust/"
TUNNEL_PATH = "/.nevertrust/tunnel"

# (scope, receive, send, allowed check, upstream, watch) -> serves one tunnel websocket; the
# watch yields an event that is set when access ends, and must be entered for the
# connection's lifetime.
TunnelHandler = Callable[
    [Scope, Receive, Send, Check, str, AbstractAsyncContextManager[asyncio.Event]],
    Awaitable[None],
]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    base_domain: str
    portal_url: str
    scheme: str
    secure_cookies: bool
    app_url: Callable[[str], str]


def _safe_target(target: str) -> str:
    """Only same-host absolute paths; anything else becomes '/' (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return "/"
    if any(ch in target for ch in "\r\n"):
        return "/"
    return target


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


class Gateway:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        access: AccessChecker,
        handoff: HandoffService,
        proxy: UpstreamProxy,
        clock: Clock,
        live: LiveConnections,
        tunnel: TunnelHandler | None = None,
        cli_login: CliLogin | None = None,
    ) -> None:
        self._config = config
        self._access = access
        self._handoff = handoff
        self._proxy = proxy
        self._clock = clock
        self._live = live
        self._tunnel = tunnel
        self._cli_login = cli_login
        self._suffix = "." + config.base_domain

    @property
    def access(self) -> AccessChecker:
        return self._access

    def app_name_for(self, host: str) -> str | None:
        if not host.endswith(self._suffix):
            return None
        label = host[: -len(self._suffix)]
        return label if label and "." not in label else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app_name: str) -> None:
        request_id = next_request_id()
        try:
            path = normalise_path(scope.get("raw_path") or scope["path"].encode())
        except BadPath as exc:
            page = problem_page(400, "This address is not valid", str(exc), request_id=request_id)
            await send_html(send, page.status, page.html)
            return
        if path.startswith(_CONTROL_PREFIX):
            await self._control(scope, receive, send, app_name, path, request_id)
            return
        cookies = parse_cookies(header(scope, b"cookie"))
        client_ip = _client_ip(scope)
        method: str = scope["method"]
        check = await self._access.check(
            cookies.get(APP_SESSION_COOKIE, ""),
            app_name=app_name,
            method=method,
            path=path,
            client_ip=client_ip,
            request_id=request_id,
            client_device=client_device(scope),
        )
        outcome = check.outcome
        if outcome is Outcome.SIGN_IN or outcome is Outcome.STEP_UP:
            await self._to_portal(scope, send, app_name, cookies, step_up=check.step_up)
            return
        if outcome is not Outcome.ALLOW:
            page = denial_page(
                check,
                app_name=app_name,
                portal_url=self._config.portal_url,
                request_id=request_id,
            )
            await send_html(send, page.status, page.html)
            return
        upstream = self._upstream(app_name)
        principal = check.principal
        assert principal is not None  # noqa: S101 - allowed checks carry the principal
        if upstream is None or not upstream.startswith("http"):
            await self._not_http(send, app_name, principal.name, request_id)
            return
        assertion = self._access.assertion(check, app_name)
        query: bytes = scope.get("query_string", b"")
        try:
            await self._proxy.forward(
                upstream=upstream,
                method=method,
                raw_path=path.encode(),
                query=query,
                headers=scope["headers"],
                extra_headers=[
                    (ASSERTION_HEADER.encode(), assertion.encode()),
                    (b"x-nevertrust-user", principal.name.encode()),
                    (b"x-request-id", request_id.encode()),
                ],
                drop_cookies=OUR_COOKIES,
                strip_prefix=b"x-nevertrust-",
                client_ip=client_ip,
                original_host=header(scope, b"host") or b"",
                scheme=self._config.scheme,
                receive=receive,
                send=send,
            )
        except UpstreamError as exc:
            await send_html(
                send,
                exc.status,
                render_page(
                    status=exc.status,
                    title="The application is not responding"
                    if exc.status == 504
                    else "The application is unavailable",
                    message=exc.message + ". The platform itself is fine; try again shortly.",
                    user=principal.name,
                    app=app_name,
                    request_id=request_id,
                ),
            )

    def _upstream(self, app_name: str) -> str | None:
        compiled = self._access.snapshots.snapshot.policy.app(app_name)
        return compiled.app.upstream if compiled is not None else None

    async def _not_http(self, send: Send, app_name: str, user: str, request_id: str) -> None:
        await send_html(
            send,
            400,
            render_page(
                status=400,
                title="This application is not a web application",
                message="Reach it through a tunnel: "
                f"nevertrust connect {app_name} --local-port PORT",
                user=user,
                app=app_name,
                request_id=request_id,
            ),
        )

    # Websockets (proxied apps and TCP tunnels)

    async def websocket(self, scope: Scope, receive: Receive, send: Send, app_name: str) -> None:
        """The same check as for HTTP, once per connection; the connection is then watched
        and closed as soon as a change (revocation, group, policy) would deny it."""
        request_id = next_request_id()
        try:
            path = normalise_path(scope.get("raw_path") or scope["path"].encode())
        except BadPath:
            await send({"type": "websocket.close", "code": 1008})
            return
        cookies = parse_cookies(header(scope, b"cookie"))
        token = cookies.get(APP_SESSION_COOKIE, "")
        client_ip = _client_ip(scope)
        # A tunnel is decided as a CONNECT, so rules can tell it from web traffic.
        method = "CONNECT" if path == TUNNEL_PATH else "GET"
        device = client_device(scope)
        check = await self._access.check(
            token,
            app_name=app_name,
            method=method,
            path=path,
            client_ip=client_ip,
            request_id=request_id,
            client_device=device,
        )
        if not check.allowed:
            await refuse_handshake(scope, send, check)
            return
        upstream = self._upstream(app_name)
        if upstream is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        if path == TUNNEL_PATH:
            if self._tunnel is None or upstream.startswith("http"):
                await send({"type": "websocket.close", "code": 1008})
                return
            watch = self._live.watch(
                token,
                app_name=app_name,
                path=path,
                client_ip=client_ip,
                method=method,
                client_device=device,
            )
            await self._tunnel(scope, receive, send, check, upstream, watch)
            return
        if not upstream.startswith("http"):
            await send({"type": "websocket.close", "code": 1008})
            return
        principal = check.principal
        assert principal is not None  # noqa: S101 - allowed checks carry the principal
        async with self._live.watch(
            token, app_name=app_name, path=path, client_ip=client_ip, client_device=device
        ) as cut:
            await proxy_websocket(
                scope,
                receive,
                send,
                client=self._proxy.client_for(upstream),
                url=upstream + path,
                query=scope.get("query_string", b""),
                headers=scope["headers"],
                extra_headers={
                    ASSERTION_HEADER: self._access.assertion(check, app_name),
                    "x-nevertrust-user": principal.name,
                    "x-request-id": request_id,
                    "x-forwarded-for": client_ip,
                    "x-forwarded-proto": self._config.scheme,
                },
                drop_cookies=OUR_COOKIES,
                cut=cut,
            )

    # Redirects to and from the portal

    async def _to_portal(
        self,
        scope: Scope,
        send: Send,
        app_name: str,
        cookies: dict[str, str],
        *,
        step_up: StepUp | None = None,
    ) -> None:
        # The raw (still percent-encoded) path: the decoded one may hold characters that
        # are not valid in a URL, and the user must come back to exactly what they asked.
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        state = cookies.get(STATE_COOKIE) or new_token()
        await send_redirect(
            send,
            portal_location(
                self._config.portal_url, self._config.app_url(app_name) + target, state, step_up
            ),
            headers=[self.state_cookie(state)],
        )

    def state_cookie(self, state: str) -> tuple[bytes, bytes]:
        return cookie_header(STATE_COOKIE, state, max_age=600, secure=self._config.secure_cookies)

    async def _control(
        self, scope: Scope, receive: Receive, send: Send, app_name: str, path: str, request_id: str
    ) -> None:
        if path == "/.nevertrust/callback":
            await self._callback(scope, send, app_name, request_id)
        elif path == "/.nevertrust/sign_out":
            await send_redirect(send, self._config.portal_url + "/logout")
        elif path in CLI_PATHS and self._cli_login is not None:
            cookies = parse_cookies(header(scope, b"cookie"))
            await self._cli_login(
                scope,
                receive,
                send,
                app_name=app_name,
                path=path,
                request_id=request_id,
                token=cookies.get(APP_SESSION_COOKIE, ""),
                sign_in=lambda: self._to_portal(scope, send, app_name, cookies),
            )
        else:
            await send_html(
                send, 404, render_page(status=404, title="Not found", request_id=request_id)
            )

    async def _callback(self, scope: Scope, send: Send, app_name: str, request_id: str) -> None:
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        code = (params.get("code") or [""])[0]
        cookies = parse_cookies(header(scope, b"cookie"))
        state = cookies.get(STATE_COOKIE, "")
        client_ip = _client_ip(scope)
        user_agent = (header(scope, b"user-agent") or b"").decode("latin-1")
        try:
            token, record, target = await anyio.to_thread.run_sync(
                lambda: self._handoff.redeem(
                    code, app_name=app_name, state=state, source_ip=client_ip, user_agent=user_agent
                )
            )
        except InvalidHandoff as exc:
            await send_html(
                send,
                400,
                render_page(
                    status=400,
                    title="Sign-in could not be completed",
                    message=exc.message + ".",
                    links=[("Try again", "/")],
                    request_id=request_id,
                ),
            )
            return
        self._access.remember(record)
        path = _safe_target(target)  # the portal stored only path and query
        max_age = max(0, int((record.expires_at - self._clock.now()).total_seconds()))
        await send_redirect(
            send,
            path,
            headers=[
                cookie_header(
                    APP_SESSION_COOKIE, token, max_age=max_age, secure=self._config.secure_cookies
                ),
                cookie_header(STATE_COOKIE, "", max_age=0, secure=self._config.secure_cookies),
            ],
        )
