"""Real-socket helpers for gateway tests: upstream servers and the platform under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import uvicorn
from aiohttp import web

from nevertrust.app import Services
from nevertrust.gateway import APP_SESSION_COOKIE
from nevertrust.server import Runtime, uvicorn_config
from tests.ports import free_port as free_port  # re-exported for the test modules

from ._support import PASSWORD


@dataclass
class Upstream:
    port: int
    seen_headers: list[dict[str, str]]
    release: asyncio.Event


@contextlib.asynccontextmanager
async def upstream_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    seen: list[dict[str, str]] = []
    release = asyncio.Event()

    async def echo_ws(request: web.Request) -> web.WebSocketResponse:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
        return ws

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def hello(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(text="hello " + request.path)

    app = web.Application()
    app.router.add_get("/ws", echo_ws)
    app.router.add_get("/slow", slow)
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
    await site.start()
    try:
        yield Upstream(port, seen, release)
    finally:
        release.set()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def platform(svc: Services) -> AsyncIterator[tuple[Runtime, int]]:
    """The platform as ``nevertrust server`` runs it (the same uvicorn configuration)."""
    runtime = Runtime(svc)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(runtime.asgi, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    try:
        yield runtime, port
    finally:
        server.should_exit = True
        await task


def publish(svc: Services, app: str, upstream: str) -> None:
    svc.catalog.add_app(app, upstream=upstream, actor="admin:root")
    svc.catalog.set_rule(app, "staff", True, actor="admin:root")


def app_token(svc: Services, user: str, app: str) -> str:
    issued = svc.auth.login(user, PASSWORD, source_ip="192.0.2.7", user_agent="ua")
    code = svc.handoff.issue(issued.record, app_name=app, target="/", state="st")
    token, _, _ = svc.handoff.redeem(code, app_name=app, state="st", source_ip="", user_agent="")
    return token


def host_headers(app: str, port: int, token: str) -> dict[str, str]:
    return {"host": f"{app}.localhost:{port}", "cookie": f"{APP_SESSION_COOKIE}={token}"}
