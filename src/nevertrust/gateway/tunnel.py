"""TCP tunnels: one allowed websocket carries one TCP connection to a ``tcp://`` upstream.

``nevertrust connect APP`` opens a websocket to ``APP/.nevertrust/tunnel`` for every local
connection it accepts, so every connection gets its own access check (done by the gateway
before this handler runs, as a ``CONNECT``). This module serves the websocket once it is
allowed: it opens the TCP connection, then copies bytes both ways as binary frames until
either side closes or access ends (``LiveConnections`` sets the cut event on revocation,
a policy change or expiry; the client then gets close code 1008).

Backpressure is end to end: a TCP read is sent only once the previous frame left (the
ASGI server's ``send`` waits while its write buffer is full), and a frame is read from the
websocket only once the previous one was drained into the TCP socket, so a slow side slows
the other instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass

from nevertrust.apps.upstreams import tcp_address
from nevertrust.audit import Action, AuditEntry, AuditLog, Outcome
from nevertrust.clock import Clock
from nevertrust.errors import InvalidInput
from nevertrust.gateway.access import Check
from nevertrust.gateway.http import header
from nevertrust.types import Receive, Scope, Send

__all__ = ["MAX_FRAME", "TunnelClosed", "TunnelServer"]

_log = logging.getLogger("nevertrust.gateway.tunnel")

MAX_FRAME = 256 * 1024  # largest frame accepted from a client; the CLI sends <= 64 KiB
_READ_CHUNK = 64 * 1024  # largest frame sent to a client
NORMAL = 1000
_GOING_AWAY = 1001
_UNSUPPORTED = 1003
POLICY_VIOLATION = 1008
_TOO_BIG = 1009
UPSTREAM_FAILED = 1011


@dataclass(frozen=True, slots=True)
class TunnelClosed:
    """What one tunnel carried, for the log (never payload, never the session)."""

    app: str
    user: str
    client_ip: str
    upstream: str
    bytes_up: int  # client -> upstream
    bytes_down: int  # upstream -> client
    seconds: float
    ended_by: str  # client, upstream, access-ended, too-big, error, shutdown


class _Counter:
    __slots__ = ("down", "up")

    def __init__(self) -> None:
        self.up = 0
        self.down = 0


class TunnelServer:
    """The gateway's ``TunnelHandler``: ``tunnel=TunnelServer(connect_timeout=...)``."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        audit: AuditLog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._audit = audit
        self._clock = clock

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        check: Check,
        upstream: str,
        watch: AbstractAsyncContextManager[asyncio.Event],
    ) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if header(scope, b"origin") is not None:
            # Browsers always send Origin on a websocket handshake, and would attach the
            # user's app cookie for any same-site page (every *.<domain> app is same-site).
            # The command line sends none: refusing browsers stops cross-site tunnels.
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        principal, session = check.principal, check.session
        app = session.app_name if session is not None and session.app_name else ""
        user = principal.name if principal is not None else ""
        client = scope.get("client")
        client_ip = client[0] if client else ""
        try:
            host, port = tcp_address(upstream)
        except InvalidInput:
            _log.error("tunnel_bad_upstream", extra={"app": app})
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        async with watch as cut:
            if cut.is_set():
                await send({"type": "websocket.close", "code": POLICY_VIOLATION})
                return
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout=self._connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                reason = _connect_failure(exc, self._connect_timeout)
                _log.warning(
                    "tunnel_upstream_failed", extra={"app": app, "user": user, "error": reason}
                )
                # Accept first: a close before accept is a bare 403, and this is no denial.
                with contextlib.suppress(OSError):  # the client may be gone already
                    await send({"type": "websocket.accept"})
                    await _close(send, UPSTREAM_FAILED, f"cannot reach {app}: {reason}")
                return
            started = time.monotonic()
            counter = _Counter()
            ended_by = "client"  # unless the pump says otherwise
            try:
                await send({"type": "websocket.accept"})
                _log.info("tunnel_opened", extra={"app": app, "user": user, "client_ip": client_ip})
                ended_by = await _pump(receive, send, reader, writer, cut, counter)
            except asyncio.CancelledError:  # the server is shutting down
                ended_by = "shutdown"
                await _close(send, _GOING_AWAY, "gateway shutting down")
                raise
            except OSError:  # the client left between the handshake and the accept
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), timeout=5)
                closed = TunnelClosed(
                    app=app,
                    user=user,
                    client_ip=client_ip,
                    upstream=f"{host}:{port}",
                    bytes_up=counter.up,
                    bytes_down=counter.down,
                    seconds=round(time.monotonic() - started, 3),
                    ended_by=ended_by,
                )
                _log.info("tunnel_closed", extra=asdict(closed))
                self._record(closed)

    def _record(self, closed: TunnelClosed) -> None:
        """Queue the tunnel's end for the audit log (what it carried; its start was the
        access decision). A full queue loses only this summary, never grants anything."""
        if self._audit is None or self._clock is None:
            return
        self._audit.enqueue(
            AuditEntry(
                ts=self._clock.now(),
                actor=f"user:{closed.user}",
                action=Action.TUNNEL_CLOSED,
                outcome=Outcome.SUCCESS,
                target=f"app:{closed.app}",
                source=closed.client_ip,
                reason=closed.ended_by,
                details={
                    "upstream": closed.upstream,
                    "bytes_up": closed.bytes_up,
                    "bytes_down": closed.bytes_down,
                    "seconds": closed.seconds,
                },
            )
        )


async def _pump(
    receive: Receive,
    send: Send,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cut: asyncio.Event,
    counter: _Counter,
) -> str:
    """Copy both ways until one side ends; close the websocket accordingly; say who ended."""

    async def client_to_upstream() -> str:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return "client"
            if kind != "websocket.receive":
                continue
            data = message.get("bytes")
            if data is None:
                await _close(send, _UNSUPPORTED, "a tunnel carries binary frames only")
                return "error"
            if len(data) > MAX_FRAME:
                await _close(send, _TOO_BIG, f"frames are limited to {MAX_FRAME} bytes")
                return "too-big"
            writer.write(data)
            await writer.drain()
            counter.up += len(data)

    async def upstream_to_client() -> str:
        while True:
            data = await reader.read(_READ_CHUNK)
            if not data:
                await _close(send, NORMAL, "upstream closed the connection")
                return "upstream"
            await send({"type": "websocket.send", "bytes": data})
            counter.down += len(data)

    async def access_ended() -> str:
        await cut.wait()
        await _close(send, POLICY_VIOLATION, "access ended")
        return "access-ended"

    tasks = [
        asyncio.create_task(client_to_upstream()),
        asyncio.create_task(upstream_to_client()),
        asyncio.create_task(access_ended()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    first = done.pop()
    try:
        return first.result()
    except (OSError, ConnectionError) as exc:
        # The upstream reset the connection, or the client vanished mid-send.
        _log.info("tunnel_io_error", extra={"error": type(exc).__name__})
        await _close(send, UPSTREAM_FAILED, "connection to the application failed")
        return "error"


async def _close(send: Send, code: int, reason: str) -> None:
    """Close the websocket; a second close, or a close after the client left, is a no-op."""
    with contextlib.suppress(Exception):
        await send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def _connect_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
