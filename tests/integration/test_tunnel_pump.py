"""TCP tunnels on real sockets: the gateway's TunnelServer under uvicorn, a real TCP
upstream on loopback, and real websocket clients (the websockets library and the
command line's own Forwarder). No mocks: the access check is what the gateway hands the
handler once a connection is allowed, and the cut event is what LiveConnections sets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from nevertrust.domain import Decision, Reason
from nevertrust.gateway.access import Check, Outcome
from nevertrust.gateway.http import header, parse_cookies, send_json
from nevertrust.gateway.tunnel import TunnelServer
from nevertrust.gateway.ws_refusal import refuse_handshake
from nevertrust.tunnelclient import AppEndpoint, AppSession, Credentials, Forwarder, GatewayClient
from nevertrust.types import Receive, Scope, Send

from ._gateway import free_port

ALLOWED = Check(Outcome.ALLOW)
REFUSED = Check(Outcome.DENY, Decision.deny(Reason.NOT_IN_ALLOWED_GROUP))
TUNNEL = "/.nevertrust/tunnel"


@dataclass
class Upstream:
    """A TCP server on loopback: echoes, or sends a goodbye and hangs up."""

    port: int
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # a client came
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # a client connection ended

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def tcp_upstream(*, goodbye: bytes | None = None) -> AsyncIterator[Upstream]:
    upstream = Upstream(0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream.connected.set()
        try:
            if goodbye is not None:
                writer.write(goodbye)
                await writer.drain()
                return
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            upstream.closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    upstream.port = int(server.sockets[0].getsockname()[1])
    try:
        yield upstream
    finally:
        server.close()


@dataclass
class Gateway:
    """Stands where the enforcer stands: allows tokens in ``allowed``, refuses the rest."""

    port: int
    upstream: str
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    allowed: set[str] = field(default_factory=lambda: {"good"})
    live: set[str] = field(default_factory=lambda: {"good"})  # sessions that still work
    explain: bool = False  # refuse as the gateway does: reason header and text, not bare


@contextlib.asynccontextmanager
async def gateway(upstream: str) -> AsyncIterator[Gateway]:
    gw = Gateway(free_port(), upstream)
    handler = TunnelServer(connect_timeout=2)

    @contextlib.asynccontextmanager
    async def watch() -> AsyncIterator[asyncio.Event]:
        yield gw.cut

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        token = parse_cookies(header(scope, b"cookie")).get("nt_app_session", "")
        if scope["type"] == "websocket":
            if token not in gw.allowed and gw.explain:
                await refuse_handshake(scope, send, REFUSED)
                return
            if token not in gw.allowed:
                await send({"type": "websocket.close", "code": 1008})  # handshake: 403
                return
            await handler(scope, receive, send, ALLOWED, gw.upstream, watch())
        elif scope["type"] == "http":  # the command line's session check
            if token in gw.live:
                await send_json(send, 200, {"user": "alice", "tunnel": True})
            else:
                await send_json(send, 401, {"error": "signed-out"})

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=gw.port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    try:
        yield gw
    finally:
        server.should_exit = True
        await task


def tunnel_url(gw: Gateway) -> str:
    return f"ws://127.0.0.1:{gw.port}{TUNNEL}"


COOKIE = {"cookie": "nt_app_session=good"}


async def test_bytes_cross_both_ways_in_bounded_binary_frames() -> None:
    payload = bytes(range(256)) * 12_000  # 3 MB
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE, compression=None) as ws:

            async def send_all() -> None:
                for start in range(0, len(payload), 65536):
                    await ws.send(payload[start : start + 65536])

            sender = asyncio.create_task(send_all())
            received = bytearray()
            frames: list[int] = []
            while len(received) < len(payload):
                frame = await ws.recv()
                assert isinstance(frame, bytes)
                frames.append(len(frame))
                received += frame
            await sender
    assert bytes(received) == payload
    assert max(frames) <= 64 * 1024


async def test_access_ending_closes_with_1008_and_hangs_up_the_upstream() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE) as ws:
            await ws.send(b"ping")
            assert await ws.recv() == b"ping"

            gw.cut.set()

            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
            assert ws.close_reason == "access ended"
        await asyncio.wait_for(upstream.closed.wait(), timeout=30)


async def test_unreachable_upstream_closes_with_1011_and_says_why() -> None:
    async with gateway(f"tcp://127.0.0.1:{free_port()}") as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert ws.close_code == 1011
    assert ws.close_reason.endswith("connection refused")


async def test_upstream_hanging_up_delivers_its_last_bytes_then_closes_normally() -> None:
    async with tcp_upstream(goodbye=b"bye") as upstream, gateway(upstream.url) as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE) as ws:
            assert await ws.recv() == b"bye"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert (ws.close_code, ws.close_reason) == (1000, "upstream closed the connection")


async def test_client_closing_hangs_up_the_upstream() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE) as ws:
            await ws.send(b"x")
            assert await ws.recv() == b"x"
        await asyncio.wait_for(upstream.closed.wait(), timeout=30)


async def test_a_browser_handshake_is_refused() -> None:
    # Browsers always send Origin; a same-site page must not open tunnels with the cookie.
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        with pytest.raises(InvalidStatus) as info:
            await connect(tunnel_url(gw), additional_headers=COOKIE, origin="http://evil.localhost")
    assert info.value.response.status_code == 403


@pytest.mark.parametrize(
    ("frame", "code"), [(b"x" * (256 * 1024 + 1), 1009), ("text, not bytes", 1003)]
)
async def test_oversized_or_text_frames_close_the_tunnel(frame: bytes | str, code: int) -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with connect(tunnel_url(gw), additional_headers=COOKIE, max_size=None) as ws:
            await ws.send(frame)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert ws.close_code == code


# The command line's side: a local port, one websocket per connection.


@contextlib.asynccontextmanager
async def forwarder(
    gw: Gateway, sign_in: Callable[[], Awaitable[AppSession]]
) -> AsyncIterator[tuple[int, list[str]]]:
    endpoint = AppEndpoint.from_portal(f"http://auth.localhost:{gw.port}", "db")
    client = GatewayClient(endpoint)
    warnings: list[str] = []
    fwd = Forwarder(
        endpoint, Credentials(sign_in), client, say=lambda _: None, warn=warnings.append
    )
    listener = await fwd.listen("127.0.0.1", 0)
    await listener.start_serving()
    port = int(listener.sockets[0].getsockname()[1])
    serving = asyncio.create_task(fwd.serve(listener))
    try:
        yield port, warnings
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await client.aclose()


def session(token: str) -> Callable[[], Awaitable[AppSession]]:
    async def sign_in() -> AppSession:
        return AppSession(token, "alice", datetime.now(UTC) + timedelta(hours=1))

    return sign_in


@contextlib.asynccontextmanager
async def local_connection(port: int) -> AsyncIterator[asyncio.StreamReader]:
    """A client of the local port (psql's place); yields its reader, sends nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), timeout=30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_each_local_connection_is_tunnelled_to_the_upstream() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with forwarder(gw, session("good")) as (port, warnings):
            first = await exchange(port, b"one")
            second = await exchange(port, b"two" * 100_000)
    assert (first, second) == (b"one", b"two" * 100_000)
    assert warnings == []


async def test_cut_says_access_ended_and_closes_the_local_connection() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        async with (
            forwarder(gw, session("good")) as (port, warnings),
            local_connection(port) as reader,
        ):
            assert await asyncio.wait_for(upstream.connected.wait(), timeout=30)

            gw.cut.set()

            assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    assert warnings == ["db: access ended (revoked or policy changed)"]


async def test_refusal_with_a_live_session_says_access_denied_by_policy() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        gw.allowed.clear()
        async with (
            forwarder(gw, session("good")) as (port, warnings),
            local_connection(port) as reader,
        ):
            assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    assert warnings == ["db: access denied by policy"]


async def test_an_explained_refusal_is_shown_with_its_reason() -> None:
    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        gw.allowed.clear()
        gw.explain = True
        async with (
            forwarder(gw, session("good")) as (port, warnings),
            local_connection(port) as reader,
        ):
            assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    assert warnings == [
        "db: access denied by policy: You are not a member of any group allowed to use this "
        "application. [not-in-allowed-group]"
    ]


async def test_refusal_after_the_session_ended_signs_in_again_and_connects() -> None:
    tokens = iter(["ended", "fresh"])

    async def sign_in() -> AppSession:
        return await session(next(tokens))()

    async with tcp_upstream() as upstream, gateway(upstream.url) as gw:
        gw.allowed = {"fresh"}
        gw.live = {"fresh"}
        async with forwarder(gw, sign_in) as (port, warnings):
            echoed = await exchange(port, b"again")
    assert echoed == b"again"
    assert warnings == ["db: your sign-in has ended; sign in again to continue"]
