"""Signing the command line in: the confirmation page, its CSRF-protected answer, the
loopback redirect with a one-time code, and redeeming the code for a session of its own
that hangs off the portal session (real services, real storage, the gateway's checker).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.crypto import hash_token
from nevertrust.gateway.cli_login import CliLogin
from nevertrust.gateway.http import header, parse_cookies, send_redirect
from nevertrust.identity import InvalidHandoff, SessionKind, SessionRecord
from nevertrust.server import Runtime
from nevertrust.types import Receive, Scope, Send

from ._support import PASSWORD

NONCE = "n" * 43
CLI_PORT = 45678


@pytest.fixture
def svc(any_services: Services) -> Services:
    d = any_services.directory
    d.add_user("alice", actor="admin:root", password=PASSWORD)
    d.add_group("dba", actor="admin:root")
    d.set_membership("dba", "alice", True, actor="admin:root")
    any_services.catalog.add_app("db", upstream="tcp://127.0.0.1:5432", actor="admin:root")
    any_services.catalog.add_app("wiki", upstream="http://127.0.0.1:9", actor="admin:root")
    any_services.catalog.set_rule("db", "dba", True, actor="admin:root")
    return any_services


@pytest.fixture
def portal(svc: Services) -> SessionRecord:
    return svc.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua").record


def app_session(svc: Services, portal: SessionRecord, app: str = "db") -> tuple[str, SessionRecord]:
    code = svc.handoff.issue(portal, app_name=app, target="/", state="st")
    token, record, _ = svc.handoff.redeem(
        code, app_name=app, state="st", source_ip="192.0.2.7", user_agent="browser"
    )
    return token, record


@pytest.fixture
async def gateway(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The two control paths as the gateway dispatches them, for app ``db``."""
    runtime = Runtime(svc)
    await runtime.start()
    cli = CliLogin(
        access=runtime.access, handoff=svc.handoff, master_key=svc.master_key, clock=svc.clock
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        cookies = parse_cookies(header(scope, b"cookie"))

        async def sign_in() -> None:
            await send_redirect(send, "http://auth.localhost/authorize")

        await cli(
            scope,
            receive,
            send,
            app_name="db",
            path=scope["path"],
            token=cookies.get("nt_app_session", ""),
            request_id="r1",
            sign_in=sign_in,
        )

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://db.localhost") as client:
        yield client
    await runtime.stop()


def cookie(token: str) -> dict[str, str]:
    """The browser's app cookie, as a header (httpx deprecates per-request cookies)."""
    return {"cookie": f"nt_app_session={token}"}


def login_link(port: int = CLI_PORT, nonce: str = NONCE) -> str:
    return f"/.nevertrust/cli-login?port={port}&nonce={nonce}"


def hidden(html: str) -> dict[str, str]:
    return {
        name: unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }


async def allow(client: httpx.AsyncClient, token: str) -> httpx.Response:
    cookies = cookie(token)
    page = await client.get(login_link(), headers=cookies)
    assert page.status_code == 200, page.text
    return await client.post(
        "/.nevertrust/cli-login", data={**hidden(page.text), "action": "allow"}, headers=cookies
    )


async def test_without_an_app_session_the_page_sends_the_browser_to_sign_in(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get(login_link())
    assert response.status_code == 302
    assert response.headers["location"] == "http://auth.localhost/authorize"


async def test_page_asks_to_allow_the_command_line_as_the_signed_in_person(
    svc: Services, portal: SessionRecord, gateway: httpx.AsyncClient
) -> None:
    token, _ = app_session(svc, portal)
    page = await gateway.get(login_link(), headers=cookie(token))
    assert page.status_code == 200
    assert "Allow the command line on this computer to connect to db as alice?" in page.text
    assert page.headers["x-frame-options"] == "DENY"  # cannot be clicked through a frame
    assert hidden(page.text).keys() == {"csrf_token", "port", "nonce"}


async def test_allow_hands_a_one_time_code_to_the_loopback_callback_only(
    svc: Services, portal: SessionRecord, gateway: httpx.AsyncClient
) -> None:
    token, browser_session = app_session(svc, portal)
    answer = await allow(gateway, token)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "http",
        f"127.0.0.1:{CLI_PORT}",
        "/callback",
    )
    code = parse_qs(location.query)["code"][0]

    wrong = await gateway.post("/.nevertrust/cli-token", data={"code": code, "nonce": "x" * 43})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid-handoff"

    answer = await allow(gateway, token)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    redeemed = await gateway.post(
        "/.nevertrust/cli-token",
        data={"code": code, "nonce": NONCE},
        headers={"user-agent": "nevertrust-connect/test"},
    )
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    assert body["user"] == "alice"
    cli_token = body["token"]
    assert cli_token != token
    again = await gateway.post("/.nevertrust/cli-token", data={"code": code, "nonce": NONCE})
    assert again.status_code == 400

    # A session of its own, a child of the portal session like the browser's.
    stored = svc.sessions.session_by_hash(hash_token(cli_token))
    assert stored is not None
    assert (stored.kind, stored.app_name) == (SessionKind.APP, "db")
    assert stored.parent_hash == browser_session.parent_hash == portal.id_hash
    assert stored.user_agent == "nevertrust-connect/test"
    status = await gateway.get("/.nevertrust/cli-token", headers=cookie(cli_token))
    assert status.status_code == 200
    assert (status.json()["user"], status.json()["tunnel"]) == ("alice", True)


async def test_answer_without_the_page_token_is_refused(
    svc: Services, portal: SessionRecord, gateway: httpx.AsyncClient
) -> None:
    token, _ = app_session(svc, portal)
    cookies = cookie(token)
    page = await gateway.get(login_link(), headers=cookies)
    fields = hidden(page.text)

    forged = await gateway.post(
        "/.nevertrust/cli-login",
        data={"port": str(CLI_PORT), "nonce": NONCE, "action": "allow"},
        headers=cookies,
    )
    other_port = await gateway.post(
        "/.nevertrust/cli-login",
        data={**fields, "port": "45679", "action": "allow"},
        headers=cookies,
    )
    no_session = await gateway.post("/.nevertrust/cli-login", data={**fields, "action": "allow"})

    for response in (forged, other_port, no_session):
        assert response.status_code == 403
        assert "This form has expired" in response.text


async def test_cancel_tells_the_command_line_to_stop_waiting(
    svc: Services, portal: SessionRecord, gateway: httpx.AsyncClient
) -> None:
    token, _ = app_session(svc, portal)
    cookies = cookie(token)
    page = await gateway.get(login_link(), headers=cookies)
    answer = await gateway.post(
        "/.nevertrust/cli-login", data={**hidden(page.text), "action": "cancel"}, headers=cookies
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == f"http://127.0.0.1:{CLI_PORT}/callback?error=cancelled"


@pytest.mark.parametrize(
    "link",
    [
        login_link(port=80),  # privileged: never the command line's ephemeral port
        login_link(port=70000),
        login_link(nonce="short"),
        login_link(nonce="n" * 40 + "<x>"),
        "/.nevertrust/cli-login?nonce=" + NONCE,
    ],
)
async def test_malformed_links_are_refused(
    svc: Services, portal: SessionRecord, gateway: httpx.AsyncClient, link: str
) -> None:
    token, _ = app_session(svc, portal)
    response = await gateway.get(link, headers=cookie(token))
    assert response.status_code == 400
    assert "This sign-in link is not valid" in response.text


async def test_session_check_says_signed_out_without_a_live_session(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/.nevertrust/cli-token", headers=cookie("nope"))
    assert response.status_code == 401
    assert response.json()["error"] == "signed-out"


# The hand-off itself (identity/handoff.py)


def test_command_line_session_is_a_child_of_the_portal_session_and_dies_with_it(
    svc: Services, portal: SessionRecord
) -> None:
    _, browser = app_session(svc, portal)
    code = svc.handoff.issue_for_app_session(browser.id_hash, app_name="db", state=NONCE)

    _, cli, _ = svc.handoff.redeem(
        code, app_name="db", state=NONCE, source_ip="127.0.0.1", user_agent="cli"
    )

    assert (cli.kind, cli.app_name, cli.parent_hash) == (SessionKind.APP, "db", portal.id_hash)
    assert cli.id_hash != browser.id_hash
    svc.sessions.logout(portal, actor="user:alice")
    stored = svc.sessions.session_by_hash(cli.id_hash)
    assert stored is not None and stored.revoked_at is not None


def test_only_a_live_app_session_of_that_app_may_ask(svc: Services, portal: SessionRecord) -> None:
    _, wiki = app_session(svc, portal, app="wiki")
    with pytest.raises(InvalidHandoff):
        svc.handoff.issue_for_app_session(wiki.id_hash, app_name="db", state=NONCE)
    with pytest.raises(InvalidHandoff):
        svc.handoff.issue_for_app_session(portal.id_hash, app_name="db", state=NONCE)
    _, db = app_session(svc, portal)
    svc.sessions.logout(portal, actor="user:alice")
    with pytest.raises(InvalidHandoff):
        svc.handoff.issue_for_app_session(db.id_hash, app_name="db", state=NONCE)
