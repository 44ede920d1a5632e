"""Forward-auth: NeverTrust deciding for a proxy that stands in front of the app.

nginx (``auth_request``), Caddy (``forward_auth``), Traefik (``ForwardAuth``) and Envoy
(``ext_authz``, HTTP service) each ask "may this request through?" in their own way. The
question is read from headers only the proxy may set, so only peers listed in
``gateway.forward_auth_clients`` may ask (everyone else could describe any request they
like). The answer comes from the same ``AccessChecker`` as the built-in proxy, so a rule,
a revocation or an idle timeout means the same at every door.

Endpoints (``/.nevertrust/`` is reserved on every host):

* ``/.nevertrust/authz/auth-request``: nginx. 200 allow; 401 with ``Location`` (and the
  state cookie) for sign-in, since nginx passes only 2xx/401/403 on; 403 with
  ``X-NeverTrust-Reason`` otherwise.
* ``/.nevertrust/authz/forward-auth``: Caddy and Traefik. 200 allow; 302 to the portal
  for sign-in; the 403/503 HTML page, which the proxy hands to the browser as is.
* ``/.nevertrust/authz/ext-authz/<original path>``: Envoy, answering like forward-auth.

On allow, ``X-NeverTrust-User``, ``-Email``, ``-Groups`` and ``-Assertion`` (the signed
JWT) are returned for the proxy to copy onto the upstream request; all four are always
set, so a client-supplied header of the same name is overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nevertrust.clock import Clock
from nevertrust.crypto import new_token
from nevertrust.errors import NeverTrustError
from nevertrust.gateway.access import (
    NEEDS_STORAGE,
    AccessChecker,
    Check,
    Outcome,
    storage_unavailable,
)
from nevertrust.gateway.answers import denial_page, portal_location, problem_page
from nevertrust.gateway.enforcer import APP_SESSION_COOKIE, STATE_COOKIE, Gateway, GatewayConfig
from nevertrust.gateway.forwarded import (
    ForwardedRequest,
    from_envoy,
    from_original_url,
    from_x_forwarded,
    parse_networks,
    peer_allowed,
)
from nevertrust.gateway.http import cookie_header, parse_cookies
from nevertrust.gateway.request_ids import next_request_id
from nevertrust.gateway.state import CachedSession
from nevertrust.types import Receive, Scope, Send

__all__ = ["PREFIX", "Answer", "ForwardAuth", "Pending"]

_log = logging.getLogger("nevertrust.gateway.forward_auth")

PREFIX = "/.nevertrust/authz/"
_NGINX = "auth-request"
_FORWARD = "forward-auth"
_ENVOY = "ext-authz"
_HTML = (b"content-type", b"text/html; charset=utf-8")
_NO_STORE = (b"cache-control", b"no-store")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Pending:
    """A question whose session only storage can answer."""

    style: str
    request: ForwardedRequest
    app_name: str
    token: str
    state: str
    request_id: str


class ForwardAuth:
    def __init__(
        self,
        *,
        gateway: Gateway,
        access: AccessChecker,
        config: GatewayConfig,
        clock: Clock,
        clients: Sequence[str],
    ) -> None:
        self._gateway = gateway
        self._access = access
        self._config = config
        self._clock = clock
        self._clients = parse_networks(clients)

    # The two halves: everything synchronous, then (rarely) one storage read.

    def prepare(
        self, target: str, peer: str, headers: Sequence[tuple[bytes, bytes]], method: str
    ) -> Answer | Pending:
        """Answer from memory when possible; a Pending says a storage read is needed."""
        request_id = next_request_id()
        # Envoy appends the original path and query after its prefix; the others ask at
        # a fixed path, where a query means nothing.
        style, _, tail = target[len(PREFIX) :].partition("/")
        style = style.partition("?")[0]
        if style not in (_NGINX, _FORWARD, _ENVOY):
            return self._problem(404, "Not found", "No such forward-auth endpoint.", request_id)
        if not peer_allowed(peer, self._clients):
            # Not one of our proxies: it could describe any request it likes.
            return self._refuse(
                style,
                "untrusted-client",
                "This address may not ask forward-auth questions.",
                request_id,
            )
        try:
            if style == _NGINX:
                request = from_original_url(headers)
            elif style == _FORWARD:
                request = from_x_forwarded(headers)
            else:
                request = from_envoy(headers, path_after_prefix="/" + tail, method=method)
        except NeverTrustError as exc:
            return self._refuse(style, "bad-request", str(exc), request_id)
        if not request.client_ip:
            # Rules about addresses would otherwise see "unknown" and a deny rule on an
            # address range would not apply: refuse rather than decide without it.
            return self._refuse(
                style,
                "bad-request",
                "The proxy must say who the client is (X-Forwarded-For, X-Real-IP or "
                "x-envoy-external-address).",
                request_id,
            )
        app_name = self._gateway.app_name_for(request.host)
        if app_name is None:
            return self._refuse(
                style, "unknown-app", f"{request.host} is not an application host.", request_id
            )
        cookies = _cookies(headers)
        pending = Pending(
            style,
            request,
            app_name,
            cookies.get(APP_SESSION_COOKIE, ""),
            cookies.get(STATE_COOKIE, ""),
            request_id,
        )
        now = self._clock.now()
        found = self._access.cached_session(pending.token, now)
        if found is NEEDS_STORAGE:
            return pending
        return self.finish(pending, found)  # type: ignore[arg-type]

    async def complete(self, pending: Pending) -> Answer:
        try:
            session = await self._access.load_session(pending.token, self._clock.now())
        except Exception:  # noqa: BLE001 - storage down: fail closed with a clear answer
            _log.exception("session_lookup_failed")
            return self._answer_check(pending, storage_unavailable())
        return self.finish(pending, session)

    def finish(self, pending: Pending, session: CachedSession | None) -> Answer:
        request = pending.request
        check = self._access.evaluate(
            session,
            app_name=pending.app_name,
            method=request.method,
            path=request.path,
            client_ip=request.client_ip,
            request_id=pending.request_id,
            now=self._clock.now(),
        )
        return self._answer_check(pending, check)

    async def answer(
        self, target: str, peer: str, headers: Sequence[tuple[bytes, bytes]], method: str
    ) -> Answer:
        prepared = self.prepare(target, peer, headers, method)
        if isinstance(prepared, Pending):
            return await self.complete(prepared)
        return prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoints on the main port (the dedicated listener is ``AuthzServer``)."""
        client = scope.get("client")
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query: bytes = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        answer = await self.answer(
            target, client[0] if client else "", scope["headers"], scope["method"]
        )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *answer.headers,
                    (b"content-length", str(len(answer.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    # Answers

    def _answer_check(self, pending: Pending, check: Check) -> Answer:
        outcome = check.outcome
        if outcome is Outcome.ALLOW:
            return self._allow(pending, check)
        if outcome is Outcome.SIGN_IN or outcome is Outcome.STEP_UP:
            request = pending.request
            target = request.path + ("?" + request.query if request.query else "")
            state = pending.state or new_token()
            location = portal_location(
                self._config.portal_url,
                self._config.app_url(pending.app_name) + target,
                state,
                check.step_up,
            )
            status = 401 if pending.style == _NGINX else 302
            return Answer(
                status,
                [
                    (b"location", location.encode("latin-1")),
                    cookie_header(
                        STATE_COOKIE, state, max_age=600, secure=self._config.secure_cookies
                    ),
                    _NO_STORE,
                ],
            )
        page = denial_page(
            check,
            app_name=pending.app_name,
            portal_url=self._config.portal_url,
            request_id=pending.request_id,
        )
        status = 403 if pending.style == _NGINX else page.status
        return Answer(
            status,
            [
                _HTML,
                _NO_STORE,
                (b"x-nevertrust-reason", page.reason.encode()),
                (b"x-request-id", pending.request_id.encode()),
            ],
            page.html.encode(),
        )

    def _allow(self, pending: Pending, check: Check) -> Answer:
        principal = check.principal
        assert principal is not None  # noqa: S101 - allowed checks carry the principal
        return Answer(
            200,
            [
                (b"x-nevertrust-user", principal.name.encode()),
                (b"x-nevertrust-email", principal.email.encode()),
                (b"x-nevertrust-groups", ",".join(sorted(principal.groups)).encode()),
                (
                    b"x-nevertrust-assertion",
                    self._access.assertion(check, pending.app_name).encode(),
                ),
                (b"x-request-id", pending.request_id.encode()),
                _NO_STORE,
            ],
        )

    def _refuse(self, style: str, reason: str, message: str, request_id: str) -> Answer:
        answer = self._problem(
            400 if reason == "bad-request" else 403,
            "This request cannot be checked",
            message,
            request_id,
        )
        status = 403 if style == _NGINX else answer.status
        return Answer(
            status, [*answer.headers, (b"x-nevertrust-reason", reason.encode())], answer.body
        )

    def _problem(self, status: int, title: str, message: str, request_id: str) -> Answer:
        page = problem_page(status, title, message, request_id=request_id)
        return Answer(
            status,
            [_HTML, _NO_STORE, (b"x-request-id", request_id.encode())],
            page.html.encode(),
        )


def _cookies(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    for key, value in headers:
        if key == b"cookie":
            return parse_cookies(value)
    return {}
