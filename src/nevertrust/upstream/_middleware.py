"""ASGI middleware: admit only requests carrying a valid NeverTrust identity assertion.

Plain ASGI (no ``BaseHTTPMiddleware``), for HTTP and websocket scopes. It fails closed: a
missing or invalid assertion is refused with 401 (websockets: closed with 1008, policy
violation) and a JWKS that cannot be fetched with 503 (websockets: 1013, try again
later); the wrapped app only ever sees verified requests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from nevertrust.errors import NeverTrustError
from nevertrust.gateway.assertion import ASSERTION_HEADER, InvalidAssertion, verify_assertion
from nevertrust.gateway.http import send_json
from nevertrust.types import ASGIApp, Receive, Scope, Send
from nevertrust.upstream._identity import Identity, MissingAssertion
from nevertrust.upstream._jwks import JwksCache, JwksUnavailable

__all__ = ["STATE_KEY", "AssertionMiddleware"]

_log = logging.getLogger("nevertrust.upstream")
_HEADER = ASSERTION_HEADER.encode()
STATE_KEY = "nevertrust"  # scope["state"]["nevertrust"] -> request.state.nevertrust


def _kid(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None  # verify_assertion says what is wrong with it
    return kid if isinstance(kid, str) else None


def _knows(jwks: Mapping[str, Any], kid: str) -> bool:
    return any(k.get("kid") == kid for k in jwks.get("keys", []))


class AssertionMiddleware:
    """Verify ``X-NeverTrust-Assertion`` and put the ``Identity`` in the request state.

    ``issuer`` is the portal URL (``https://auth.example.com``) and ``audience`` this
    app's URL as NeverTrust publishes it (``https://wiki.example.com``): an assertion
    minted for another app is refused. ``jwks_host_header`` sets the Host header of the
    JWKS request, for reaching the portal by address. ``exempt_paths`` are exact paths
    (such as ``/healthz``) passed through unverified and without an identity.
    ``http_client`` is used for JWKS fetches when given (proxies, a private CA).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        jwks_host_header: str | None = None,
        leeway_seconds: int = 5,
        refresh_seconds: float = 300.0,
        exempt_paths: Iterable[str] = (),
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.app = app
        self.jwks = JwksCache(
            jwks_url,
            host_header=jwks_host_header,
            refresh_seconds=refresh_seconds,
            http_client=http_client,
        )
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope.get("path") in self._exempt:
            await self.app(scope, receive, send)  # lifespan and exempt paths pass through
            return
        try:
            identity = await self.identify(scope)
        except (InvalidAssertion, JwksUnavailable) as exc:
            await _refuse(kind, exc, receive, send)
            return
        # Copies, as the ASGI spec asks of middleware: the caller's scope and its state
        # (which may be shared lifespan state) stay as they were.
        state = {**scope.get("state", {}), STATE_KEY: identity}
        await self.app({**scope, "state": state}, receive, send)

    async def identify(self, scope: Scope) -> Identity:
        """The verified identity of a request.

        Raises:
            MissingAssertion: no assertion header.
            InvalidAssertion: more than one, or one that does not verify.
            JwksUnavailable: the keys to check it against cannot be fetched.
        """
        values = [value for name, value in scope["headers"] if name == _HEADER]
        if not values:
            raise MissingAssertion("no identity assertion: reach this app through NeverTrust")
        if len(values) > 1:
            raise InvalidAssertion("more than one identity assertion header")
        token = bytes(values[0]).decode("latin-1")
        jwks = await self.jwks.get()
        kid = _kid(token)
        if kid is not None and not _knows(jwks, kid):
            # The gateway may have rotated its key since our copy was fetched.
            jwks = await self.jwks.refresh_for_unknown_key()
        claims = verify_assertion(
            token,
            jwks=jwks,
            expected_issuer=self._issuer,
            expected_audience=self._audience,
            now=datetime.now(UTC),
            leeway_seconds=self._leeway,
        )
        return Identity.from_claims(claims)


async def _refuse(kind: str, exc: NeverTrustError, receive: Receive, send: Send) -> None:
    if isinstance(exc, JwksUnavailable):
        _log.warning("assertion_unverifiable", extra={"error": exc.message})
    if kind == "http":
        await send_json(send, exc.http_status, {"error": exc.code, "detail": exc.message})
        return
    # Websocket: take the handshake, then refuse it (a close before accept becomes an
    # HTTP 403 at the client). Close reasons are limited to 123 bytes.
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send(
        {
            "type": "websocket.close",
            "code": 1013 if isinstance(exc, JwksUnavailable) else 1008,
            "reason": f"{exc.code}: {exc.message}".encode()[:123].decode("utf-8", "ignore"),
        }
    )
