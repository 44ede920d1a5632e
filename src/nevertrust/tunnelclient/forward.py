"""The local listener: each accepted TCP connection gets its own tunnel websocket.

One websocket per connection is deliberate: every connection is then decided by the
gateway on its own (policy per connection), recorded on its own, and cut on its own when
access ends. Bytes are copied as binary frames with backpressure both ways (``send``
waits for the websocket's write buffer to drain; a frame is read only after the previous
one reached the local socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from nevertrust.errors import NeverTrustError
from nevertrust.tunnelclient.endpoint import AppEndpoint
from nevertrust.tunnelclient.signin import (
    APP_SESSION_COOKIE,
    USER_AGENT,
    AppSession,
    Credentials,
    GatewayClient,
)
from nevertrust.tunnelclient.tls import ClientTls

__all__ = ["CHUNK", "Forwarder", "close_reason"]

_log = logging.getLogger("nevertrust.tunnelclient")

CHUNK = 64 * 1024  # largest frame sent; the gateway accepts up to 256 KiB
_MAX_INCOMING = 1024 * 1024
_POLICY_VIOLATION = 1008


def close_reason(app: str, code: int | None, reason: str) -> str | None:
    """The line to print when the gateway ended a tunnel, or None for ordinary ends."""
    if code == _POLICY_VIOLATION:
        return f"{app}: access ended (revoked or policy changed)"
    if code == 1011:
        return f"{app}: {reason or 'the gateway could not reach the application'}"
    if code in (1003, 1009):
        return f"{app}: the gateway closed the tunnel: {reason}"
    if code == 1001:
        return f"{app}: the gateway is restarting; reconnect"
    return None


class Forwarder:
    """Serves ``bind:port`` until cancelled, tunnelling each connection to ``endpoint``."""

    def __init__(
        self,
        endpoint: AppEndpoint,
        credentials: Credentials,
        client: GatewayClient,
        *,
        say: Callable[[str], None],
        warn: Callable[[str], None],
        tls: ClientTls | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._tls = tls or ClientTls(None, None)
        self._credentials = credentials
        self._client = client
        self._say = say
        self._warn = warn
        self._connections: set[asyncio.Task[None]] = set()

    async def serve(self, server: asyncio.Server) -> None:
        """Accept on ``server`` (from ``listen``) until cancelled; then close everything."""
        try:
            await server.serve_forever()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)

    async def listen(self, bind: str, port: int) -> asyncio.Server:
        """Bind the local port now, so a port in use fails before any sign-in; connections
        are accepted once the caller starts serving (after sign-in)."""
        return await asyncio.start_server(self._accept, bind, port, start_serving=False)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside the server's task
        self._connections.add(task)
        try:
            websocket = await self._open()
            if websocket is not None:
                await self._pump(reader, writer, websocket)
        except NeverTrustError as exc:
            self._warn(f"{self._endpoint.app}: {exc.message}")
        except asyncio.CancelledError:
            # Only ``serve`` cancels these (Ctrl-C); ending quietly keeps asyncio's stream
            # callback from reporting the cancelled handler as an error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=2)

    async def _open(self) -> ClientConnection | None:
        """The tunnel websocket, signing in again once if the session has ended."""
        app = self._endpoint.app
        session = await self._credentials.current()
        for attempt in (1, 2):
            try:
                return await self._connect(session)
            except InvalidStatus as exc:
                status = exc.response.status_code
                why = _refusal(exc)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._warn(f"{app}: cannot reach the gateway at {self._endpoint.origin}: {exc}")
                return None
            if status not in (401, 403):
                self._warn(f"{app}: the gateway refused the tunnel (HTTP {status})")
                return None
            known = await self._client.status(session)
            if known is not None and not known.alive and attempt == 1:
                self._warn(f"{app}: your sign-in has ended; sign in again to continue")
                session = await self._credentials.renew(session)
                continue
            if known is not None and known.alive and not known.tunnel:
                self._warn(
                    f"{app} is a web application, not a tunnel: open {self._endpoint.origin}/"
                )
            elif self._endpoint.scheme == "https" and self._tls.device is None:
                # The missing device is something this side knows and the person can fix.
                self._warn(
                    f"{app}: access denied by policy (this connection presented no device "
                    "certificate; apps that require a compliant device need one: --device)"
                    + (f": {why}" if why else "")
                )
            else:
                self._warn(f"{app}: access denied by policy" + (f": {why}" if why else ""))
            return None
        return None

    async def _connect(self, session: AppSession) -> ClientConnection:
        endpoint = self._endpoint
        extra: dict[str, Any] = {}
        if endpoint.connect_host != endpoint.host:
            extra = {"host": endpoint.connect_host, "port": endpoint.port}
        if self._tls.context is not None:
            # The device certificate (if any) goes in this handshake; the server name
            # checked is the app host, from the URL, whatever address is dialled.
            extra["ssl"] = self._tls.context
        return await connect(
            endpoint.tunnel_url,
            additional_headers={"cookie": f"{APP_SESSION_COOKIE}={session.token}"},
            user_agent_header=USER_AGENT,
            # Compression would cost CPU on opaque (often encrypted) bytes, for nothing.
            compression=None,
            max_size=_MAX_INCOMING,
            open_timeout=15,
            proxy=None if endpoint.loopback else True,
            **extra,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: ClientConnection
    ) -> None:
        async def local_to_gateway() -> None:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    return
                await ws.send(data)

        async def gateway_to_local() -> None:
            async for message in ws:
                if isinstance(message, str):
                    return  # tunnels carry bytes only; a text frame is a broken peer
                writer.write(message)
                await writer.drain()

        tasks = [
            asyncio.create_task(local_to_gateway()),
            asyncio.create_task(gateway_to_local()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                    await task
            with contextlib.suppress(Exception):
                await ws.close()
        line = close_reason(self._endpoint.app, ws.close_code, ws.close_reason or "")
        if line is not None:
            self._warn(line)


def _refusal(exc: InvalidStatus) -> str:
    """The gateway's explanation of a refused handshake ("text [reason-codes]"), or "" when
    it sent none (an older gateway closes before accepting, a bare 403)."""
    response = exc.response
    reason = response.headers.get("x-nevertrust-reason", "")
    if not reason:
        return ""
    text = (response.body or b"").decode("utf-8", "replace").strip()
    printable = " ".join("".join(c for c in text if c.isprintable()).split())[:300]
    codes = "".join(c for c in reason if c.isalnum() or c in ",-")[:100]
    return f"{printable} [{codes}]" if printable else f"[{codes}]"
