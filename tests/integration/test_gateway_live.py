"""The gateway on real sockets: websockets (and their cut on revocation), upstream faults,
per-app isolation, and the dedicated forward-auth listener.

The platform runs in process under a real uvicorn server; upstreams are real aiohttp
servers on loopback.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from nevertrust.app import Services
from nevertrust.gateway import APP_SESSION_COOKIE

from ._gateway import app_token, free_port, host_headers, platform, publish, upstream_server
from ._support import PASSWORD, eventually


@pytest.fixture
def svc(any_services: Services) -> Services:
    directory = any_services.directory
    for name in ("alice", "bob"):
        directory.add_user(name, actor="admin:root", password=PASSWORD)
    directory.add_group("staff", actor="admin:root")
    directory.set_membership("staff", "alice", True, actor="admin:root")
    return any_services


async def test_websocket_is_proxied_with_the_assertion_and_cut_when_sessions_are_revoked(
    svc: Services,
) -> None:
    async with upstream_server() as up:
        publish(svc, "chat", f"http://127.0.0.1:{up.port}")
        token = app_token(svc, "alice", "chat")
        async with platform(svc) as (runtime, port), aiohttp.ClientSession() as client:
            ws = await client.ws_connect(
                f"http://127.0.0.1:{port}/ws", headers=host_headers("chat", port, token)
            )
            await ws.send_str("hi")
            reply = await asyncio.wait_for(ws.receive(), timeout=10)
            assert reply.data == "echo:hi"
            assert up.seen_headers[-1]["x-nevertrust-user"] == "alice"
            assert up.seen_headers[-1]["x-nevertrust-assertion"].count(".") == 2
            assert APP_SESSION_COOKIE not in up.seen_headers[-1].get("cookie", "")

            svc.sessions.revoke_user_sessions("alice", actor="admin:root")

            closing = await asyncio.wait_for(ws.receive(), timeout=20)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008
            assert await eventually(lambda: len(runtime.live) == 0)


async def test_websocket_without_access_is_refused_at_the_handshake(svc: Services) -> None:
    async with upstream_server() as up:
        publish(svc, "chat", f"http://127.0.0.1:{up.port}")
        token = app_token(svc, "bob", "chat")  # bob is not in staff
        async with platform(svc) as (_, port), aiohttp.ClientSession() as client:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(
                    f"http://127.0.0.1:{port}/ws", headers=host_headers("chat", port, token)
                )
    assert refused.value.status == 403
    assert up.seen_headers == []


async def test_a_hung_app_gets_504_while_other_apps_keep_answering(svc: Services) -> None:
    svc.settings.gateway.upstream_timeout_seconds = 1.0
    svc.settings.gateway.upstream_pool_size = 2
    async with upstream_server() as slow_up, upstream_server() as fast_up:
        publish(svc, "slow", f"http://127.0.0.1:{slow_up.port}")
        publish(svc, "fast", f"http://127.0.0.1:{fast_up.port}")
        slow_token = app_token(svc, "alice", "slow")
        fast_token = app_token(svc, "alice", "fast")
        async with platform(svc) as (_, port), aiohttp.ClientSession() as client:

            async def get(app: str, token: str, path: str) -> tuple[int, str]:
                async with client.get(
                    f"http://127.0.0.1:{port}{path}", headers=host_headers(app, port, token)
                ) as response:
                    return response.status, await response.text()

            hung = [asyncio.create_task(get("slow", slow_token, "/slow")) for _ in range(6)]
            fast = await asyncio.gather(*(get("fast", fast_token, "/x") for _ in range(10)))
            slow = await asyncio.gather(*hung)

    assert fast == [(200, "hello /x")] * 10
    assert {status for status, _ in slow} == {504}
    assert "did not answer in time" in slow[0][1]


async def test_an_app_whose_upstream_is_down_gets_a_502_page(svc: Services) -> None:
    publish(svc, "gone", f"http://127.0.0.1:{free_port()}")
    token = app_token(svc, "alice", "gone")
    async with platform(svc) as (_, port), aiohttp.ClientSession() as client:
        async with client.get(
            f"http://127.0.0.1:{port}/", headers=host_headers("gone", port, token)
        ) as response:
            body = await response.text()
    assert response.status == 502
    assert "The application is unavailable" in body


async def test_upstream_receives_the_normalised_path_the_policy_decided_on(
    svc: Services,
) -> None:
    async with upstream_server() as up:
        publish(svc, "docs", f"http://127.0.0.1:{up.port}")
        token = app_token(svc, "alice", "docs")
        async with platform(svc) as (_, port), aiohttp.ClientSession() as client:
            headers = host_headers("docs", port, token)
            url = f"http://127.0.0.1:{port}/public/%2e%2e//%61dmin/./x"
            async with client.get(
                aiohttp.client.URL(url, encoded=True), headers=headers
            ) as response:
                body = await response.text()
            async with client.get(
                aiohttp.client.URL(f"http://127.0.0.1:{port}/a%2Fb", encoded=True),
                headers=headers,
            ) as refused:
                refused_status = refused.status
    assert (response.status, body) == (200, "hello /admin/x")
    assert refused_status == 400


async def test_two_host_headers_are_refused(svc: Services) -> None:
    async with platform(svc) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: auth.localhost\r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400")
