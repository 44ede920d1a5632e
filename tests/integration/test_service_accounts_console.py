"""The console pages for service accounts and the identity report (real portal, both backends)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.identity.api_keys import parse_key
from nevertrust.web.api import build_api
from nevertrust.web.csrf import CSRF_COOKIE, CsrfTokens
from nevertrust.web.portal import PortalContext, build_portal

from ._support import PASSWORD

ROOT = "cli:root"
PAGE = "/console/service-accounts"
_KEY = re.compile(r"ntk_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def svc(any_services: Services) -> Services:
    d = any_services.directory
    d.add_group("admins", actor=ROOT)
    for name in ("root", "alice"):
        d.add_user(name, actor=ROOT, password=PASSWORD)
    d.set_membership("admins", "root", True, actor=ROOT)
    return any_services


def browser(svc: Services, username: str | None) -> tuple[httpx.AsyncClient, str]:
    """A client signed in as ``username`` with a CSRF cookie, and the form token for it."""
    portal = build_portal(PortalContext(svc), api=build_api(svc))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal), base_url="http://auth.localhost"
    )
    cookie = CsrfTokens.new_cookie()
    client.cookies.set(CSRF_COOKIE, cookie)
    if username is not None:
        issued = svc.auth.login(username, PASSWORD, source_ip="127.0.0.1", user_agent="test")
        client.cookies.set("nt_session", issued.token)
    return client, CsrfTokens(svc.master_key).token_for(cookie)


@pytest.fixture
async def admin(svc: Services) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    client, token = browser(svc, "root")
    async with client:
        yield client, token


async def test_only_admins_see_the_pages(svc: Services) -> None:
    anonymous, _ = browser(svc, None)
    person, _ = browser(svc, "alice")
    async with anonymous, person:
        for path in (PAGE, "/console/reports/identity"):
            assert (await anonymous.get(path)).headers["location"] == "/login"
            assert (await person.get(path)).status_code == 403


async def test_an_admin_creates_an_account_and_sees_a_new_key_exactly_once(
    svc: Services, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, token = admin
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert 'href="/console/service-accounts"' in page.text  # in the console navigation
    assert "No service accounts yet." in page.text

    created = await client.post(
        PAGE, data={"csrf_token": token, "name": "ci-bot", "owner": "alice", "description": "CI"}
    )
    assert created.status_code == 303
    assert svc.service_accounts.get("ci-bot").owner == "alice"

    issued = await client.post(
        PAGE + "/ci-bot/keys",
        data={"csrf_token": token, "key_name": "deploy", "scope": ["api:read", "api:write"],
              "expires_in": "30d"},
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    [plaintext] = _KEY.findall(issued.text)
    assert "shown only this once" in issued.text
    assert issued.headers["cache-control"] == "no-store"
    found = svc.service_accounts.authenticate(plaintext)
    assert found is not None and found[1].scopes == ("api:read", "api:write")

    again = await client.get(PAGE)
    parsed = parse_key(plaintext)
    assert parsed is not None
    assert parsed.prefix in again.text and parsed.secret not in again.text


async def test_forms_without_the_csrf_token_change_nothing(
    svc: Services, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = admin

    response = await client.post(PAGE, data={"name": "ci-bot", "owner": "alice"})

    assert response.status_code == 403
    assert svc.service_accounts.inventory() == []


async def test_rotate_revoke_owner_and_errors_from_the_console(
    svc: Services, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, token = admin
    svc.service_accounts.create("ci-bot", owner="alice", actor=ROOT)
    old_plain, old = svc.service_accounts.issue_key("ci-bot", "deploy", ["api:read"], actor=ROOT)

    rotated = await client.post(PAGE + f"/keys/{old.prefix}/rotate", data={"csrf_token": token})
    assert rotated.status_code == 201
    [new_plain] = _KEY.findall(rotated.text)
    assert f"replaces <code>{old.prefix}</code>" in rotated.text
    assert svc.service_accounts.authenticate(new_plain) is not None
    assert svc.service_accounts.authenticate(old_plain) is not None  # 24 h grace

    revoked = await client.post(PAGE + f"/keys/{old.prefix}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303 and "Revoked" in revoked.headers["location"]
    assert svc.service_accounts.authenticate(old_plain) is None

    owner = await client.post(PAGE + "/ci-bot/owner", data={"csrf_token": token, "owner": "root"})
    assert owner.status_code == 303 and svc.service_accounts.get("ci-bot").owner == "root"

    bad = await client.post(
        PAGE + "/ci-bot/keys", data={"csrf_token": token, "key_name": "x", "scope": "root"}
    )
    assert bad.status_code == 400 and "unknown scope" in bad.text

    disabled = await client.post(
        PAGE + "/ci-bot/enabled", data={"csrf_token": token, "action": "disable"}
    )
    assert disabled.status_code == 303
    assert svc.service_accounts.authenticate(new_plain) is None


async def test_the_identity_report_page(svc: Services, clock: FixedClock) -> None:
    svc.service_accounts.create("ci-bot", owner="alice", actor=ROOT)
    svc.directory.set_enabled("alice", False, actor=ROOT)
    clock.advance(timedelta(days=10))
    client, _ = browser(svc, "root")  # signs in now: root was last seen just now

    async with client:
        page = await client.get("/console/reports/identity?inactive_days=7")
        bad = await client.get("/console/reports/identity?inactive_days=soon")

    assert page.status_code == 200
    assert 'href="/console/reports/identity"' in page.text
    assert re.search(r'id="people">1<', page.text)  # root; alice is disabled
    assert "0 (0.0 %)" in page.text
    assert "Inactive for 7 days or more" in page.text
    assert "<td>root</td>" not in page.text  # root just signed in, so is not inactive
    assert "owner-disabled" in page.text
    assert bad.status_code == 400 and "expected a whole number" in bad.text
