"""The portal's passkey endpoints through the real portal app, on both backends.

The browser side is a software authenticator answering the JSON the endpoints send,
exactly what ``static/webauthn.js`` relays between the page and ``navigator.credentials``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.crypto import hash_token
from nevertrust.identity import SessionKind
from nevertrust.web.portal import PortalContext
from nevertrust.web.portal._context import SignedIn
from nevertrust.web.portal.webauthn_routes import HANDLE_COOKIE, passkeys_context
from tests.soft_authenticator import SoftAuthenticator

from ._support import PASSWORD, portal_client, set_cookies, sign_in_with_password

APP_URL = "http://whoami.localhost:8080/reports?q=1"


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    return any_services


@pytest.fixture
def key(svc: Services) -> SoftAuthenticator:
    return SoftAuthenticator(origin=svc.settings.portal_url)


@pytest.fixture
async def browser(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a CSRF cookie and its header token."""
    async with portal_client(svc) as client:
        yield client


sign_in = sign_in_with_password


async def add_passkey(
    client: httpx.AsyncClient, key: SoftAuthenticator, name: str = "laptop"
) -> dict[str, Any]:
    begun = await client.post("/webauthn/register/begin")
    assert begun.status_code == 200, begun.text
    finished = await client.post(
        "/webauthn/register/finish", json={"credential": key.create(begun.text), "name": name}
    )
    assert finished.status_code == 200, finished.text
    return finished.json()  # type: ignore[no-any-return]


async def test_a_signed_in_user_adds_a_passkey_and_the_challenge_travels_in_a_hidden_cookie(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)

    begun = await browser.post("/webauthn/register/begin")

    assert begun.headers["content-type"] == "application/json"
    assert begun.json()["user"]["name"] == "alice"
    cookie = set_cookies(begun)[HANDLE_COOKIE][HANDLE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["domain"] == ""  # host-only: never sent to app hosts
    assert cookie["samesite"].lower() == "lax"
    assert cookie["max-age"] == "300"
    assert cookie.value not in begun.text

    finished = await browser.post(
        "/webauthn/register/finish", json={"credential": key.create(begun.text), "name": "Laptop"}
    )

    assert finished.status_code == 200, finished.text
    assert finished.json()["name"] == "Laptop"
    assert finished.json()["redirect"] == "/account#passkeys"
    assert set_cookies(finished)[HANDLE_COOKIE][HANDLE_COOKIE]["max-age"] == "0"
    alice = svc.directory.get_user("alice")
    assert [p.name for p in svc.webauthn.list(alice)] == ["Laptop"]


async def test_a_passkey_completes_the_second_sign_in_step_and_continues_to_the_app(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    await add_passkey(browser, key)
    browser.cookies.delete("nt_session")
    pending = sign_in(svc, browser)
    assert "nt_pending" in browser.cookies

    begun = await browser.post("/webauthn/login/begin")
    assert begun.status_code == 200, begun.text
    finished = await browser.post(
        "/webauthn/login/finish",
        json={"credential": key.get(begun.text), "rd": APP_URL, "state": "st-1"},
    )

    assert finished.status_code == 200, finished.text
    target = urlsplit(finished.json()["redirect"])
    assert target.path == "/authorize"
    assert parse_qs(target.query) == {"rd": [APP_URL], "state": ["st-1"]}
    cookies = set_cookies(finished)
    assert cookies["nt_pending"]["nt_pending"]["max-age"] == "0"
    session_token = cookies["nt_session"]["nt_session"].value
    found = svc.sessions.portal_session(session_token)
    assert found is not None
    assert "webauthn" in found[0].auth_methods and "pwd" in found[0].auth_methods
    # The pending session is spent: it cannot be turned into a second full session.
    assert svc.auth.pending_session(pending) is None
    assert session_token != pending and found[0].id_hash != hash_token(pending)


async def test_without_an_app_to_return_to_the_second_step_goes_home(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    await add_passkey(browser, key)
    browser.cookies.delete("nt_session")
    sign_in(svc, browser)

    begun = await browser.post("/webauthn/login/begin")
    finished = await browser.post(
        "/webauthn/login/finish", json={"credential": key.get(begun.text), "rd": APP_URL}
    )

    assert finished.json() == {"redirect": "/"}


async def test_a_refused_assertion_answers_json_and_leaves_the_pending_session_alone(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    await add_passkey(browser, key)
    browser.cookies.delete("nt_session")
    pending = sign_in(svc, browser)

    begun = await browser.post("/webauthn/login/begin")
    assertion = key.get(begun.text, origin="http://auth.phish.example")
    finished = await browser.post("/webauthn/login/finish", json={"credential": assertion})

    assert finished.status_code == 401
    assert finished.json()["error"] == "passkey-authentication-failed"
    assert "origin" in finished.json()["detail"]
    assert "nt_session" not in set_cookies(finished)
    assert set_cookies(finished)[HANDLE_COOKIE][HANDLE_COOKIE]["max-age"] == "0"
    assert svc.auth.pending_session(pending) is not None
    # The spent challenge cannot be retried; a new ceremony works.
    again = await browser.post("/webauthn/login/finish", json={"credential": key.get(begun.text)})
    assert again.json()["error"] == "passkey-challenge-expired"
    begun = await browser.post("/webauthn/login/begin")
    finished = await browser.post(
        "/webauthn/login/finish", json={"credential": key.get(begun.text)}
    )
    assert finished.status_code == 200, finished.text


@pytest.mark.parametrize(
    "path",
    [
        "/webauthn/register/begin",
        "/webauthn/register/finish",
        "/webauthn/login/begin",
        "/webauthn/login/finish",
        "/webauthn/stepup/begin",
        "/webauthn/stepup/finish",
    ],
)
@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_every_passkey_endpoint_requires_the_csrf_header(
    svc: Services, browser: httpx.AsyncClient, path: str, token: str | None
) -> None:
    sign_in(svc, browser)
    del browser.headers["x-csrf-token"]
    headers = {} if token is None else {"x-csrf-token": token}

    response = await browser.post(path, json={}, headers=headers)

    assert response.status_code == 403
    assert response.json()["error"] == "csrf-failed"


@pytest.mark.parametrize(
    ("path", "holds"),
    [
        ("/webauthn/register/begin", None),
        ("/webauthn/stepup/begin", None),
        ("/webauthn/login/begin", None),
        ("/webauthn/login/begin", "nt_session"),  # a full session is not a pending one
        ("/webauthn/register/begin", "nt_pending"),  # nor is a pending session a full one
    ],
)
async def test_each_ceremony_needs_the_right_kind_of_session(
    svc: Services,
    browser: httpx.AsyncClient,
    key: SoftAuthenticator,
    path: str,
    holds: str | None,
) -> None:
    sign_in(svc, browser)
    await add_passkey(browser, key)
    browser.cookies.delete("nt_session")
    if holds == "nt_session":
        bob = svc.auth.login("bob", PASSWORD, source_ip="127.0.0.1", user_agent="test")
        assert bob.record.kind is SessionKind.PORTAL
        browser.cookies.set("nt_session", bob.token)
    elif holds == "nt_pending":
        sign_in(svc, browser)

    response = await browser.post(path)

    assert response.status_code == 401
    assert response.json() == {
        "error": "not-signed-in",
        "detail": "your sign-in has expired: sign in again",
        "redirect": "/login",
    }


async def test_finishing_without_the_challenge_cookie_is_refused(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    begun = await browser.post("/webauthn/register/begin")
    browser.cookies.delete(HANDLE_COOKIE)

    finished = await browser.post(
        "/webauthn/register/finish", json={"credential": key.create(begun.text)}
    )

    assert finished.status_code == 401
    assert finished.json()["error"] == "passkey-challenge-expired"
    assert svc.webauthn.list(svc.directory.get_user("alice")) == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"credential": "x"}'])
async def test_a_malformed_request_is_answered_with_a_clear_error(
    svc: Services, browser: httpx.AsyncClient, body: bytes
) -> None:
    sign_in(svc, browser)
    await browser.post("/webauthn/register/begin")

    response = await browser.post(
        "/webauthn/register/finish", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid-input"


async def test_step_up_with_a_passkey_renews_the_session_with_the_method(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    await add_passkey(browser, key)
    old = browser.cookies["nt_session"]

    begun = await browser.post("/webauthn/stepup/begin")
    finished = await browser.post(
        "/webauthn/stepup/finish",
        json={"credential": key.get(begun.text), "rd": APP_URL, "state": "st-2"},
    )

    assert finished.status_code == 200, finished.text
    assert finished.json()["redirect"].startswith("/authorize?")
    new = set_cookies(finished)["nt_session"]["nt_session"].value
    assert new != old and svc.sessions.portal_session(old) is None
    found = svc.sessions.portal_session(new)
    assert found is not None and "webauthn" in found[0].auth_methods


async def test_the_account_forms_rename_and_remove_only_your_own_passkeys(
    svc: Services, browser: httpx.AsyncClient, key: SoftAuthenticator
) -> None:
    sign_in(svc, browser)
    added = await add_passkey(browser, key)
    alice = svc.directory.get_user("alice")
    form = {"csrf_token": browser.headers["x-csrf-token"], "passkey": str(added["id"])}

    renamed = await browser.post("/account/passkeys/rename", data={**form, "name": "Desk key"})
    assert (renamed.status_code, renamed.headers["location"]) == (303, "/account#passkeys")
    context = passkeys_context(PortalContext(svc), _signed_in(svc, browser))
    assert [p.name for p in context["passkeys"]] == ["Desk key"]

    alices_session = browser.cookies["nt_session"]
    sign_in(svc, browser, "bob")  # the same browser, now signed in as bob
    stolen = await browser.post("/account/passkeys/remove", data=form)
    assert stolen.status_code == 404
    assert "bob has no passkey" in stolen.text
    assert len(svc.webauthn.list(alice)) == 1

    browser.cookies.set("nt_session", alices_session)
    forged = await browser.post("/account/passkeys/remove", data={**form, "csrf_token": "x"})
    assert forged.status_code == 403 and len(svc.webauthn.list(alice)) == 1

    # Alice signed in with her password only: removing a factor first asks for a fresh one.
    asked = await browser.post("/account/passkeys/remove", data=form)
    assert asked.status_code == 303 and asked.headers["location"].startswith("/stepup?")
    assert len(svc.webauthn.list(alice)) == 1
    begun = await browser.post("/webauthn/stepup/begin")
    finished = await browser.post(
        "/webauthn/stepup/finish", json={"credential": key.get(begun.text), "next": "/account"}
    )
    assert finished.json()["redirect"] == "/account"
    browser.cookies.set("nt_session", set_cookies(finished)["nt_session"]["nt_session"].value)

    removed = await browser.post("/account/passkeys/remove", data=form)
    assert removed.status_code == 303
    assert svc.webauthn.list(alice) == []


def _signed_in(svc: Services, client: httpx.AsyncClient) -> SignedIn:
    found = svc.sessions.portal_session(client.cookies["nt_session"])
    assert found is not None
    return SignedIn(*found)
