"""The dedicated forward-auth listener (``gateway.forward_auth_port``) on a real socket:
keep-alive, answers in request order when one of them waits on storage, and refusals of
malformed or oversized requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from nevertrust.app import Services
from nevertrust.gateway import APP_SESSION_COOKIE
from nevertrust.server import Runtime

from ._gateway import app_token, free_port
from ._support import PASSWORD

APP = "wiki"


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_group("staff", actor="admin:root")
    any_services.directory.set_membership("staff", "alice", True, actor="admin:root")
    any_services.catalog.add_app(APP, upstream="http://127.0.0.1:9", actor="admin:root")
    any_services.catalog.set_rule(APP, "staff", True, actor="admin:root")
    any_services.settings.gateway.forward_auth_port = free_port()
    return any_services


@contextlib.asynccontextmanager
async def listener(svc: Services) -> AsyncIterator[int]:
    runtime = Runtime(svc)
    await runtime.start()
    try:
        assert runtime.authz_server is not None
        yield runtime.authz_server.port
    finally:
        await runtime.stop()


def question(token: str | None, *, close: bool = False) -> bytes:
    lines = [
        "GET /.nevertrust/authz/auth-request HTTP/1.1",
        "Host: 127.0.0.1",
        f"X-Original-URL: http://{APP}.localhost:8080/page",
        "X-Original-Method: GET",
        "X-Forwarded-For: 198.51.100.4",
    ]
    if token is not None:
        lines.append(f"Cookie: {APP_SESSION_COOKIE}={token}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_answers(reader: asyncio.StreamReader, count: int) -> list[tuple[int, bytes]]:
    answers = []
    for _ in range(count):
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        head = b""
        while (line := await reader.readline()) not in (b"\r\n", b""):
            head += line
        length = next(
            int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.startswith(b"content-length")
        )
        await reader.readexactly(length)
        answers.append((int(status_line.split()[1]), head))
    return answers


async def test_keep_alive_answers_arrive_in_order_even_when_the_first_waits_on_storage(
    svc: Services,
) -> None:
    # A session this process has never seen: the first answer reads storage.
    token = app_token(svc, "alice", APP)
    async with listener(svc) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Pipelined: the second question is answered from memory at once, but must wait.
        writer.write(question(token) + question(None) + question(token))
        answers = await read_answers(reader, 3)
        writer.close()

    assert [status for status, _ in answers] == [200, 401, 200]
    assert b"x-nevertrust-user: alice" in answers[0][1]
    assert b"location: http://auth.localhost" in answers[1][1]


async def test_connection_close_is_honoured(svc: Services) -> None:
    async with listener(svc) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(question(None, close=True))
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # until the server closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"connection: close" in answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
        (
            b"GET /.nevertrust/authz/auth-request HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * 70_000
            + b"\r\n\r\n",
            b"431",
        ),
    ],
    ids=["garbage", "other-path", "huge-header"],
)
async def test_malformed_requests_are_refused(
    svc: Services, request_bytes: bytes, status: bytes
) -> None:
    async with listener(svc) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes)
        line = await asyncio.wait_for(reader.readline(), timeout=10)
        writer.close()
    assert line.split()[1] == status
