"""Passkey-first sign-in through the real portal app, on both backends.

The login page's "Sign in with a passkey" button posts to /webauthn/passwordless/begin
and /finish; here a software authenticator answers in the browser's place, exactly what
``static/webauthn.js`` relays between the page and ``navigator.credentials``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.identity import InvalidCredentials
from nevertrust.web.api import build_api
from nevertrust.web.csrf import CSRF_COOKIE, CsrfTokens
from nevertrust.web.portal import PortalContext, build_portal
from nevertrust.web.portal.webauthn_routes import HANDLE_COOKIE
from tests.soft_authenticator import SoftAuthenticator

from ._support import PASSWORD, audit_records, set_cookies

APP_URL = "http://whoami.localhost:8080/reports?q=1"
IP = "203.0.113.9"


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    return any_services


@pytest.fixture
def key(svc: Services) -> SoftAuthenticator:
    """Alice's laptop, holding a passkey she registered earlier."""
    authenticator = SoftAuthenticator(origin=svc.settings.portal_url)
    alice = svc.directory.get_user("alice")
    assert alice is not None
    options, handle = svc.webauthn.begin_registration(alice)
    svc.webauthn.finish_registration(alice, handle, authenticator.create(options), "laptop")
    return authenticator


@pytest.fixture
async def browser(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    portal = build_portal(PortalContext(svc), api=build_api(svc))
    transport = httpx.ASGITransport(app=portal)
    async with httpx.AsyncClient(transport=transport, base_url=svc.settings.portal_url) as client:
        yield client


def csrf_from_login_page(page: httpx.Response) -> str:
    """The token the page hands to webauthn.js, as the script reads it."""
    match = re.search(r'id="passkey-login"[^>]*data-csrf="([^"]+)"', page.text, re.S)
    assert match, page.text
    return match.group(1)


async def sign_in_with_passkey(
    browser: httpx.AsyncClient,
    key: SoftAuthenticator,
    *,
    rd: str = APP_URL,
    state: str = "st-1",
    csrf: str = "",
) -> httpx.Response:
    if not csrf:
        page = await browser.get("/login", params={"rd": rd, "state": state})
        assert page.status_code == 200
        csrf = csrf_from_login_page(page)
    headers = {"x-csrf-token": csrf}
    begun = await browser.post("/webauthn/passwordless/begin", headers=headers)
    assert begun.status_code == 200, begun.text
    return await browser.post(
        "/webauthn/passwordless/finish",
        headers=headers,
        json={"credential": key.get(begun.text, any_key=True), "rd": rd, "state": state},
    )


async def test_the_login_page_offers_a_passkey_and_keeps_the_password_form(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/login", params={"rd": APP_URL, "state": "st-1"})

    assert 'id="passkey-login"' in page.text
    assert 'data-begin="/webauthn/passwordless/begin"' in page.text
    assert 'data-state="st-1"' in page.text
    assert '<script src="/static/webauthn.js" defer></script>' in page.text
    form = re.search(r'<form method="post" action="/login">(.*?)</form>', page.text, re.S)
    assert form is not None
    names = set(re.findall(r'name="([^"]+)"', form.group(1)))
    assert names == {"username", "password", "csrf_token", "rd", "state", "next"}


async def test_a_passkey_alone_signs_in_and_continues_to_the_app(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")

    finished = await sign_in_with_passkey(browser, key)

    assert finished.status_code == 200, finished.text
    target = urlsplit(finished.json()["redirect"])
    assert target.path == "/authorize"
    assert parse_qs(target.query) == {"rd": [APP_URL], "state": ["st-1"]}
    cookies = set_cookies(finished)
    assert cookies[HANDLE_COOKIE][HANDLE_COOKIE]["max-age"] == "0"
    found = svc.sessions.portal_session(cookies["nt_session"]["nt_session"].value)
    assert found is not None
    session, user = found
    assert user.name == "alice"
    assert session.auth_methods == ("webauthn", "hwk", "mfa")
    # /authorize accepts the session: on to the app's callback with a one-time code.
    authorized = await browser.get(finished.json()["redirect"])
    assert authorized.status_code == 303
    callback = urlsplit(authorized.headers["location"])
    assert (callback.netloc, callback.path) == ("whoami.localhost:8080", "/.nevertrust/callback")
    [login] = [r for r in audit_records(svc) if r.action == Action.LOGIN_SUCCEEDED]
    assert json.loads(login.details)["methods"] == ["webauthn", "hwk", "mfa"]


async def test_a_passkey_sign_in_ends_the_earlier_session_in_this_browser(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    page = await browser.get("/login")  # then bob signs in in another tab
    bob = svc.auth.login("bob", PASSWORD, source_ip=IP, user_agent="t")
    browser.cookies.set("nt_session", bob.token)

    finished = await sign_in_with_passkey(
        browser, key, rd="", state="", csrf=csrf_from_login_page(page)
    )

    assert finished.json() == {"redirect": "/"}
    assert svc.sessions.portal_session(bob.token) is None
    assert svc.sessions.list_sessions(username="bob") == []


async def test_a_name_banned_for_password_guessing_still_signs_in_with_its_passkey(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    alice = svc.directory.get_user("alice")
    assert alice is not None
    for _ in range(20):
        if not svc.auth.factor_attempt_allowed(alice, IP):
            break
        with pytest.raises(InvalidCredentials):
            svc.auth.login("alice", "a guess", source_ip=IP, user_agent="t")
    assert not svc.auth.factor_attempt_allowed(alice, IP)
    with pytest.raises(InvalidCredentials):  # even the right password is refused now
        svc.auth.login("alice", PASSWORD, source_ip=IP, user_agent="t")

    finished = await sign_in_with_passkey(browser, key)

    assert finished.status_code == 200, finished.text
    assert urlsplit(finished.json()["redirect"]).path == "/authorize"


async def test_a_disabled_user_cannot_sign_in_with_a_passkey(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    svc.directory.set_enabled("alice", False, actor="admin:root")

    finished = await sign_in_with_passkey(browser, key)

    assert finished.status_code == 401
    assert finished.json()["error"] == "passkey-authentication-failed"
    assert "cannot sign in" in finished.json()["detail"]
    assert "nt_session" not in set_cookies(finished)
    assert svc.sessions.list_sessions(username="alice") == []


async def test_an_unknown_passkey_is_refused_with_an_explanation(
    browser: httpx.AsyncClient, svc: Services
) -> None:
    stranger = SoftAuthenticator(origin=svc.settings.portal_url)
    stranger.create(
        json.dumps({"challenge": "AAAA", "rp": {"id": "localhost"}, "user": {"id": "OTk"}})
    )

    finished = await sign_in_with_passkey(browser, stranger)

    assert finished.status_code == 401
    assert "not registered here" in finished.json()["detail"]
    assert "nt_session" not in set_cookies(finished)


@pytest.mark.parametrize("path", ["/webauthn/passwordless/begin", "/webauthn/passwordless/finish"])
@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_the_passwordless_endpoints_need_the_csrf_header(
    browser: httpx.AsyncClient, path: str, token: str | None, svc: Services
) -> None:
    browser.cookies.set(CSRF_COOKIE, CsrfTokens.new_cookie())
    headers = {"x-csrf-token": token} if token else {}

    answer = await browser.post(path, headers=headers, json={})

    assert answer.status_code == 403
    assert answer.json()["error"] == "csrf-failed"
    assert HANDLE_COOKIE not in set_cookies(answer)  # no challenge issued
