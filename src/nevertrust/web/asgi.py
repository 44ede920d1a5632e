"""The root ASGI app: routes by Host to the portal, an app's gateway, or nowhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nevertrust.gateway import Gateway
from nevertrust.gateway.forward_auth import PREFIX as FORWARD_AUTH_PREFIX
from nevertrust.gateway.forward_auth import ForwardAuth
from nevertrust.gateway.http import request_host, send_html
from nevertrust.gateway.pages import render_page
from nevertrust.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostRouter"]


class HostRouter:
    """Plain ASGI on purpose: this runs for every request, before anything else."""

    def __init__(
        self,
        *,
        portal_host: str,
        portal_url: str,
        portal: ASGIApp,
        gateway: Gateway,
        forward_auth: ForwardAuth,
        trusted_proxies: list[str] | None = None,
        forward_auth_on_main_port: bool = True,
        on_startup: Callable[[], Awaitable[None]],
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self._portal_host = portal_host
        self._portal_url = portal_url
        self._portal = portal
        self._gateway = gateway
        self._forward_auth = forward_auth
        self._forward_auth_here = forward_auth_on_main_port
        # Client addresses from X-Forwarded-For/-Proto of trusted proxies (uvicorn's own
        # rightmost-untrusted handling), for everything except the forward-auth endpoints:
        # there the question is who is *asking*, which is the socket peer, never a header.
        self._routed: ASGIApp = self._route
        if trusted_proxies:
            self._routed = ProxyHeadersMiddleware(  # type: ignore[assignment]
                self._route,  # type: ignore[arg-type]
                trusted_hosts=trusted_proxies,
            )
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["path"].startswith(FORWARD_AUTH_PREFIX):
            if self._forward_auth_here:
                # Proxies ask on whatever Host they were configured with; the question is
                # in the forwarded headers (only trusted peers may ask, see ForwardAuth).
                await self._forward_auth(scope, receive, send)
            else:
                await send_html(send, 404, render_page(status=404, title="Not found", message=""))
            return
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._routed(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            host = _single_host(scope)
            if host is None:
                await send_html(
                    send,
                    400,
                    render_page(
                        status=400,
                        title="Bad request",
                        message="A request must carry exactly one Host header.",
                    ),
                )
                return
            if host == self._portal_host:
                await self._portal(scope, receive, send)
                return
            app_name = self._gateway.app_name_for(host)
            if app_name is not None:
                await self._gateway(scope, receive, send, app_name)
                return
            await send_html(
                send,
                404,
                render_page(
                    status=404,
                    title="Nothing is published at this address",
                    message="Open the portal to see the applications you can use.",
                    links=[("Portal", self._portal_url + "/")],
                ),
            )
        elif kind == "websocket":
            host = _single_host(scope)
            app_name = self._gateway.app_name_for(host) if host else None
            if app_name is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self._gateway.websocket(scope, receive, send, app_name)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._on_startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _single_host(scope: Scope) -> str | None:
    """The Host, or None when there are several: two Host headers can make the router and
    an upstream disagree about which app a request is for (request smuggling)."""
    seen = 0
    for key, _ in scope["headers"]:
        if key == b"host":
            seen += 1
    return request_host(scope) if seen <= 1 else None
