"""whoami: a tiny upstream app that echoes the identity the gateway vouches for.

It trusts nothing but the signed assertion: ``AssertionMiddleware`` fetches the portal's
JWKS like any real upstream would, verifies the token (issuer, audience, ES256 only,
expiry), refetches the JWKS when the gateway rotates its key, and answers 401 without
one. This is also the reference for integrating a Python upstream (docs/assertion.md).
"""

from __future__ import annotations

from nevertrust.gateway.http import header, send_json
from nevertrust.types import Receive, Scope, Send
from nevertrust.upstream import AssertionMiddleware, Identity

__all__ = ["WhoAmI"]


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
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
    identity: Identity = scope["state"]["nevertrust"]
    body = {
        "user": identity.name,
        "name": identity.name,
        "groups": list(identity.groups),
        "email": identity.email,
        "subject": identity.subject,
        "auth_methods": list(identity.amr),
        "assertion_expires_at": identity.claims.get("exp"),
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
        self._app = AssertionMiddleware(
            _echo,
            jwks_url=jwks_url,
            issuer=expected_issuer,
            audience=expected_audience,
            jwks_host_header=jwks_host,
            refresh_seconds=refresh_interval,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)
