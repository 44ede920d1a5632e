"""Proxying an allowed websocket to the app's upstream, until either side or the gateway
ends it.

The upstream handshake happens first, so a client is only accepted when the app answered;
then two pumps copy frames each way. ``cut`` is set by ``LiveConnections`` when access ends
(revocation, policy change), and the client is closed with 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from nevertrust.gateway.proxy import HOP_BY_HOP, filter_cookie
from nevertrust.types import Receive, Scope, Send

__all__ = ["proxy_websocket"]

_log = logging.getLogger("nevertrust.gateway.websocket")

# The proxy's own request drop list (hop-by-hop fields, Host, the X-Forwarded-* we set),
# plus the handshake fields, which are the client library's to make.
_DROP = HOP_BY_HOP | {
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
}
POLICY_VIOLATION = 1008
_GOING_AWAY = 1001


def _upstream_headers(
    headers: Iterable[tuple[bytes, bytes]],
    extra: Mapping[str, str],
    drop_cookies: frozenset[str],
) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers:
        if key in _DROP or key.startswith(b"x-nevertrust-"):
            continue
        if key == b"cookie":
            kept = filter_cookie(value, drop_cookies)
            if kept is not None:
                out.add("cookie", kept.decode("latin-1"))
            continue
        out.add(key.decode("latin-1"), value.decode("latin-1"))
    for name, text in extra.items():
        out[name] = text
    return out


async def proxy_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    client: aiohttp.ClientSession,
    url: str,
    query: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    extra_headers: Mapping[str, str],
    drop_cookies: frozenset[str],
    cut: asyncio.Event,
) -> None:
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    target = url + ("?" + query.decode("latin-1") if query else "")
    protocols = [p.strip() for p in scope.get("subprotocols", ()) if p.strip()]
    try:
        upstream = await client.ws_connect(
            URL(target, encoded=True),
            headers=_upstream_headers(headers, extra_headers, drop_cookies),
            protocols=protocols,
            autoping=True,
            max_msg_size=16 * 1024 * 1024,
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        _log.warning("upstream_websocket_failed", extra={"error": str(exc)})
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.protocol})

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                await upstream.close(code=message.get("code", 1000))
                return
            if kind == "websocket.receive":
                if message.get("text") is not None:
                    await upstream.send_str(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send_bytes(message["bytes"])

    async def upstream_to_client() -> None:
        async for msg in upstream:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": msg.data})
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": msg.data})
            else:
                break
        code = upstream.close_code or _GOING_AWAY
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code})

    async def watch_cut() -> None:
        await cut.wait()
        with contextlib.suppress(Exception):
            await send(
                {"type": "websocket.close", "code": POLICY_VIOLATION, "reason": "access ended"}
            )

    tasks = [
        asyncio.create_task(client_to_upstream()),
        asyncio.create_task(upstream_to_client()),
        asyncio.create_task(watch_cut()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
