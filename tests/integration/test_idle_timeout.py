"""The gateway ends idle sessions, and activity on one replica keeps them alive on all."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.gateway import APP_SESSION_COOKIE
from nevertrust.server import Runtime

from ._gateway import app_token
from ._support import PASSWORD


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_group("staff", actor="admin:root")
    any_services.directory.set_membership("staff", "alice", True, actor="admin:root")
    # Nothing listens there: an allowed request ends in the gateway's 502 page.
    any_services.catalog.add_app("whoami", upstream="http://127.0.0.1:9", actor="admin:root")
    any_services.catalog.set_rule("whoami", "staff", True, actor="admin:root")
    return any_services


@contextlib.asynccontextmanager
async def replica(svc: Services) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = Runtime(svc)
    await runtime.start()
    transport = httpx.ASGITransport(app=runtime.asgi)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://whoami.localhost:8080"
        ) as client:
            yield runtime, client
    finally:
        await runtime.stop()


async def status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/", headers={"cookie": f"{APP_SESSION_COOKIE}={token}"})
    return response.status_code


async def test_an_app_session_unused_for_the_idle_timeout_is_sent_to_sign_in(
    svc: Services, clock: FixedClock
) -> None:
    idle = timedelta(minutes=svc.settings.identity.idle_timeout_minutes)
    token = app_token(svc, "alice", "whoami")
    async with replica(svc) as (_, client):
        assert await status(client, token) == 502  # allowed (upstream is down)
        clock.advance(idle - timedelta(seconds=1))
        assert await status(client, token) == 502  # used: the idle clock restarts
        clock.advance(idle - timedelta(seconds=1))
        assert await status(client, token) == 502
        clock.advance(idle)
        assert await status(client, token) == 302  # idle: back to the portal


async def test_activity_on_one_replica_keeps_the_session_alive_on_another(
    svc: Services, clock: FixedClock
) -> None:
    idle = timedelta(minutes=svc.settings.identity.idle_timeout_minutes)
    token = app_token(svc, "alice", "whoami")
    async with replica(svc) as (a, client_a), replica(svc) as (_, client_b):
        assert await status(client_b, token) == 502  # B caches the session now
        clock.advance(idle - timedelta(seconds=1))
        assert await status(client_a, token) == 502  # the user works on replica A
        await a.flush_activity()  # A's batched write (every few seconds in production)
        clock.advance(idle - timedelta(seconds=1))
        # B's own view is idle, so B asks storage once, sees A's activity, and allows.
        assert await status(client_b, token) == 502
        # The portal session was kept alive too: a hand-off for another app still works.
        portal = list(svc.sessions.list_sessions(username="alice"))
        assert portal and svc.sessions.alive(portal[0], clock.now())
