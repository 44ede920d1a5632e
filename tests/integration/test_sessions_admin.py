"""Admins list sessions with how and when they were used, and revoke all or one."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.crypto import hash_token

from ._support import PASSWORD
from .test_totp_cli import cli


@pytest.fixture
def clock() -> FixedClock:
    """Now, not the suite's fixed date: the CLI runs as its own process on the real clock,
    so sessions must be opened at (about) the real time to still be alive there."""
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


def sign_in(svc: Services) -> str:
    return svc.auth.login("alice", PASSWORD, source_ip="192.0.2.9", user_agent="ua").token


async def test_the_api_lists_methods_and_activity_and_revokes_one_session(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    first, second = sign_in(svc), sign_in(svc)
    listed = (await admin.get("/api/v1/sessions", params={"user": "alice"})).json()
    assert len(listed) == 2
    assert listed[0]["auth_methods"] == ["pwd"] and listed[0]["last_seen_at"]

    one = hash_token(first)[:12]
    assert one in {s["id"] for s in listed}
    done = await admin.post("/api/v1/sessions/revoke", json={"user": "alice", "session": one})
    assert done.json() == {"revoked": 1}
    assert svc.sessions.portal_session(first) is None
    assert svc.sessions.portal_session(second) is not None

    again = await admin.post("/api/v1/sessions/revoke", json={"user": "alice", "session": one})
    assert again.status_code == 404
    short = await admin.post("/api/v1/sessions/revoke", json={"user": "alice", "session": "ab"})
    assert short.status_code == 422

    everything = await admin.post("/api/v1/sessions/revoke", json={"user": "alice"})
    assert everything.json() == {"revoked": 1}
    assert svc.sessions.portal_session(second) is None


def test_the_cli_revokes_one_session_or_all(svc: Services) -> None:
    first, second = sign_in(svc), sign_in(svc)
    table = cli(svc, "sessions", "list", "--user", "alice").stdout.splitlines()
    assert "LAST SEEN" in table[0] and "METHODS" in table[0]
    one = hash_token(first)[:12]
    assert any(line.startswith(one) for line in table[1:])

    assert "revoked 1 session(s)" in cli(svc, "sessions", "revoke", "--user", "alice",
                                         "--session", one).stdout  # fmt: skip
    assert svc.sessions.portal_session(first) is None and svc.sessions.portal_session(second)
    missing = cli(svc, "sessions", "revoke", "--user", "alice", "--session", one, ok=False)
    assert missing.returncode != 0 and "error[not-found]" in missing.stderr
    assert "revoked 1 session(s)" in cli(svc, "sessions", "revoke", "--user", "alice").stdout
    assert svc.sessions.portal_session(second) is None
