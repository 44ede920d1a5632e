"""whoami: a tiny upstream app that echoes the identity the gateway vouches for.

It trusts nothing but the signed assertion: it fetches the portal's JWKS like any real
upstream would, verifies the token (issuer, audience, ES256 only, expiry), and answers
401 without one. This is also the reference for integrating a Python upstream.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from nevertrust.gateway.assertion import ASSERTION_HEADER, InvalidAssertion, verify_assertion
from nevertrust.gateway.http import header, send_json
from nevertrust.types import Receive, Scope, Send

__all__ = ["WhoAmI"]


class WhoAmI:
    def __init__(
        self,
        *,
        jwks_url: str,
        jwks_host: str,
        expected_issuer: str,
        expected_audience: str,
        refresh_interval: float = 60.0,
    ) -> None:
        self._jwks_url = jwks_url
        self._jwks_host = jwks_host
        self._issuer = expected_issuer
        self._audience = expected_audience
        self._refresh_interval = refresh_interval
        self._jwks: dict[str, Any] = {"keys": []}
        self._fetched_at = 0.0

    async def _keys(self, *, force: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        # Refetch on schedule, or on an unknown key id, but never more than once a second.
        if (
            force and now - self._fetched_at > 1.0
        ) or now - self._fetched_at > self._refresh_interval:
            async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                response = await client.get(self._jwks_url, headers={"host": self._jwks_host})
                response.raise_for_status()
                self._jwks = response.json()
                self._fetched_at = now
        return self._jwks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = header(scope, ASSERTION_HEADER.encode())
        if raw is None:
            await send_json(
                send,
                401,
                {
                    "error": "missing-assertion",
                    "detail": "no identity assertion: reach this app through NeverTrust",
                },
            )
            return
        token = raw.decode("latin-1")
        now = datetime.now(UTC)
        try:
            try:
                jwks = await self._keys()
                claims = verify_assertion(
                    token,
                    jwks=jwks,
                    expected_issuer=self._issuer,
                    expected_audience=self._audience,
                    now=now,
                )
            except InvalidAssertion as exc:
                if "unknown key" not in exc.message:
                    raise
                jwks = await self._keys(force=True)
                claims = verify_assertion(
                    token,
                    jwks=jwks,
                    expected_issuer=self._issuer,
                    expected_audience=self._audience,
                    now=now,
                )
        except InvalidAssertion as exc:
            await send_json(send, 401, {"error": exc.code, "detail": exc.message})
            return
        except httpx.HTTPError as exc:
            await send_json(send, 503, {"error": "jwks-unavailable", "detail": str(exc)})
            return
        body = {
            "user": claims.get("name"),
            "name": claims.get("name"),
            "groups": claims.get("groups", []),
            "email": claims.get("email", ""),
            "subject": claims.get("sub"),
            "auth_methods": claims.get("amr", []),
            "assertion_expires_at": claims.get("exp"),
            "request": {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "forwarded_host": (header(scope, b"x-forwarded-host") or b"").decode("latin-1"),
                "forwarded_for": (header(scope, b"x-forwarded-for") or b"").decode("latin-1"),
                "cookies_seen": sorted(
                    part.split("=", 1)[0].strip()
                    for part in (header(scope, b"cookie") or b"").decode("latin-1").split(";")
                    if "=" in part
                ),
            },
        }
        await send_json(send, 200, body)
