"""The console's session inventory: every active sign-in, and one-click sign-out."""

from __future__ import annotations

import re

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.crypto import hash_token

from ._support import PASSWORD, audit_records, client_for


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


async def test_admins_see_every_session_and_sign_one_out(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    laptop = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="Laptop")
    phone = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.2", user_agent="Phone")

    page = await admin.get("/console/sessions")
    assert page.status_code == 200
    assert "Laptop" in page.text and "Phone" in page.text and "this session" in page.text
    only_alice = await admin.get("/console/sessions", params={"user": "alice"})
    assert "this session" not in only_alice.text  # root's own session is not alice's

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    done = await admin.post(
        "/console/sessions/revoke",
        data={
            "csrf_token": token.group(1),
            "user": "alice",
            "session": hash_token(laptop.token)[:16],
        },
    )
    assert done.status_code == 303 and "Signed%20out" in done.headers["location"]
    assert svc.sessions.portal_session(laptop.token) is None
    assert svc.sessions.portal_session(phone.token) is not None
    record = audit_records(svc)[-1]
    assert (record.action, record.actor) == (Action.LOGOUT, "user:root")


async def test_the_page_is_for_admins_and_forms_need_the_csrf_token(svc: Services) -> None:
    async with client_for(svc, "alice") as alice:
        assert (await alice.get("/console/sessions")).status_code == 403
    async with client_for(svc, "root") as root:
        forged = await root.post(
            "/console/sessions/revoke", data={"csrf_token": "x", "user": "alice", "session": "0"}
        )
        assert forged.status_code == 403
        unknown = await root.get("/console/sessions", params={"user": "nobody"})
        assert unknown.status_code == 404
