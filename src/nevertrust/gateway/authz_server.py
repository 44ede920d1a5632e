"""A dedicated, lean HTTP/1.1 listener for forward-auth calls from proxies.

Why not the main uvicorn port: forward-auth runs once per request *of every protected
app*, so the proxy in front waits on it for each one. Measured on 2 cores behind nginx,
uvicorn's per-request machinery (ASGI scope and message dicts, send/receive coroutines)
cost more than the whole decision. This listener parses with httptools (the parser uvicorn
itself uses), answers from memory synchronously inside ``data_received`` when the session
is cached, and only creates a task when storage must be read. It serves exactly the
``/.nevertrust/authz/*`` endpoints, with no request bodies, and keeps answers in order on
a keep-alive connection. The same endpoints stay available on the main port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from http import HTTPStatus

import httptools

from nevertrust.gateway.forward_auth import PREFIX, Answer, ForwardAuth, Pending

__all__ = ["AuthzServer"]

_log = logging.getLogger("nevertrust.gateway.authz")

_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024
_IDLE_SECONDS = 120.0
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _encode(answer: Answer, keep_alive: bool) -> bytes:
    parts = [b"HTTP/1.1 %d %s\r\n" % (answer.status, _REASONS.get(answer.status, b"Unknown"))]
    for key, value in answer.headers:
        parts.append(key + b": " + value + b"\r\n")
    parts.append(b"content-length: %d\r\n" % len(answer.body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(answer.body)
    return b"".join(parts)


_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
    b"connection: close\r\n\r\n"
)
_NOT_FOUND = Answer(404, [(b"content-type", b"text/plain")], b"not a forward-auth endpoint\n")


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_answers",
        "_body_bytes",
        "_closing",
        "_handler",
        "_header_bytes",
        "_headers",
        "_parser",
        "_peer",
        "_server",
        "_transport",
        "_url",
        "last_active",
    )

    def __init__(self, handler: ForwardAuth, server: AuthzServer) -> None:
        self._handler = handler
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._body_bytes = 0
        # Answers in request order; a None slot waits for a storage read.
        self._answers: deque[list[bytes | None]] = deque()
        self._closing = False
        self.last_active = time.monotonic()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else ""
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, _TooLarge):
            # httptools wraps what a callback raises, so "too large" is told by the count.
            too_large = self._header_bytes > _MAX_HEADER_BYTES or self._body_bytes > _MAX_BODY_BYTES
            self._abort(_TOO_LARGE if too_large else _BAD_REQUEST)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)
        if self._header_bytes > _MAX_HEADER_BYTES:
            raise _TooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > _MAX_HEADER_BYTES:
            raise _TooLarge
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        # Forward-auth questions carry no body; drain a small one, refuse a large one.
        self._body_bytes += len(body)
        if self._body_bytes > _MAX_BODY_BYTES:
            raise _TooLarge

    def on_message_complete(self) -> None:
        if self._closing:
            return
        keep_alive = self._parser.should_keep_alive()
        method = self._parser.get_method().decode("latin-1")
        target = self._url.decode("latin-1")
        slot: list[bytes | None] = [None, b"" if keep_alive else None]
        self._answers.append(slot)
        if not keep_alive:
            self._closing = True
        if not target.startswith(PREFIX):
            slot[0] = _encode(_NOT_FOUND, keep_alive)
            self._flush()
            return
        try:
            prepared = self._handler.prepare(target, self._peer, self._headers, method)
        except Exception:  # noqa: BLE001 - never answer "allow" by accident: refuse
            _log.exception("forward_auth_failed")
            prepared = Answer(503, [(b"content-type", b"text/plain")], b"unavailable\n")
        if isinstance(prepared, Pending):
            task = asyncio.get_running_loop().create_task(self._complete(prepared, slot))
            self._server.tasks.add(task)
            task.add_done_callback(self._server.tasks.discard)
            return
        slot[0] = _encode(prepared, keep_alive)
        self._flush()

    # Answers

    async def _complete(self, pending: Pending, slot: list[bytes | None]) -> None:
        try:
            answer = await self._handler.complete(pending)
        except Exception:  # noqa: BLE001 - fail closed
            _log.exception("forward_auth_failed")
            answer = Answer(503, [(b"content-type", b"text/plain")], b"unavailable\n")
        slot[0] = _encode(answer, slot[1] is not None)
        self._flush()

    def _flush(self) -> None:
        transport = self._transport
        answers = self._answers
        while answers and answers[0][0] is not None:
            data, keep = answers.popleft()
            if transport is None:
                continue
            transport.write(data)  # type: ignore[arg-type]
            if keep is None:
                transport.close()
                self._transport = None
                answers.clear()
                return

    def _abort(self, response: bytes) -> None:
        if self._transport is not None:
            self._transport.write(response)
            self._transport.close()
            self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _TooLarge(Exception):
    pass


class AuthzServer:
    """The listener: start() binds, stop() closes every connection."""

    def __init__(self, handler: ForwardAuth, *, host: str, port: int) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self._handler, self), self._host, self._port, backlog=2048
        )
        self._reaper = loop.create_task(self._reap_idle())
        _log.info("forward_auth_listening", extra={"host": self._host, "port": self.port})

    async def _reap_idle(self) -> None:
        """One timer for all connections instead of one per request."""
        while True:
            await asyncio.sleep(_IDLE_SECONDS / 4)
            cutoff = time.monotonic() - _IDLE_SECONDS
            for connection in [c for c in self.connections if c.last_active < cutoff]:
                connection.close()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                connection.close()
            await self._server.wait_closed()
