"""Binding a browser to a device, end to end on both backends.

``nevertrust agent bind-browser`` signs a proof with the device key; the person opens the
link it prints, the portal registers this computer's platform passkey as the device's,
and every session opened with that passkey carries the device. An app that asks for a
compliant device then admits that browser, without a client certificate, exactly while
the device stays compliant. Here the portal runs in process (httpx), the gateway under a
real uvicorn, the device is a ``SoftDevice`` and the authenticator a ``SoftAuthenticator``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome
from nevertrust.clock import FixedClock
from nevertrust.crypto import hash_token
from nevertrust.gateway import APP_SESSION_COOKIE, STATE_COOKIE
from nevertrust.identity import SessionRecord
from tests.soft_authenticator import SoftAuthenticator
from tests.soft_device import SoftDevice, posture

from ._binding import (
    bind_begin,
    bind_link,
    bind_proof,
    bind_this_browser,
    enrolled_device,
    hidden_fields,
    register_finish,
    sign_in_with_passkey,
)
from ._gateway import app_token, platform, upstream_server
from ._support import (
    PASSWORD,
    audit_records,
    client_for,
    db_state,
    portal_client,
    set_cookies,
    sign_in_with_password,
)

APP = "wiki"
REFUSED = "device-bind-proof-refused"


@pytest.fixture
def svc(any_services: Services) -> Services:
    directory = any_services.directory
    directory.add_group("staff", actor="admin:root")
    for name in ("alice", "bob"):
        directory.add_user(name, actor="admin:root", password=PASSWORD)
        directory.set_membership("staff", name, True, actor="admin:root")
    return any_services


@pytest.fixture
def laptop(svc: Services) -> SoftDevice:
    """Alice's enrolled, compliant laptop: the agent on it holds the device key."""
    return enrolled_device(svc, "alice", "alice-laptop")


@pytest.fixture
def key(svc: Services) -> SoftAuthenticator:
    """The laptop's platform authenticator, as the browser on it reaches it."""
    return SoftAuthenticator(origin=svc.settings.portal_url)


@pytest.fixture
async def browser(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with portal_client(svc) as client:
        yield client


@pytest.fixture
async def bound_key(svc: Services, laptop: SoftDevice, key: SoftAuthenticator) -> SoftAuthenticator:
    """``key`` after alice bound the laptop's browser with it (then closed that browser)."""
    async with portal_client(svc) as binding:
        sign_in_with_password(svc, binding)
        finished = await bind_this_browser(binding, key, bind_proof(svc, laptop))
        assert finished.status_code == 200, finished.text
    return key


def session_of(svc: Services, token: str) -> SessionRecord:
    found = svc.sessions.portal_session(token)
    assert found is not None
    return found[0]


def bind_audit(svc: Services) -> list[tuple[str, str, str]]:
    """(outcome, target, refusal detail) of every browser-binding audit record."""
    return [
        (r.outcome, r.target, json.loads(r.details or "{}").get("detail", ""))
        for r in audit_records(svc)
        if r.action == Action.DEVICE_BROWSER_BIND
    ]


def alices_passkeys(svc: Services) -> list[tuple[str, str | None]]:
    alice = svc.directory.get_user("alice")
    assert alice is not None
    return [(p.name, p.device_id) for p in svc.webauthn.list(alice)]


# The bind page


async def test_the_link_sends_a_signed_out_browser_to_sign_in_and_back_to_the_page(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice
) -> None:
    link = bind_link(bind_proof(svc, laptop))

    asked = await browser.get(link)
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/login?{urlencode({'next': link})}"
    login = await browser.get(asked.headers["location"])
    fields = hidden_fields(login.text, "/login")
    assert fields["next"] == link
    signed_in = await browser.post(
        "/login", data={**fields, "username": "alice", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == link

    page = await browser.get(link)
    assert page.status_code == 200
    assert "alice-laptop" in page.text and laptop.device_id in page.text


async def test_the_link_survives_the_second_step_of_sign_in(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, clock: FixedClock
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="admin:root").secret
    link = bind_link(bind_proof(svc, laptop))
    login = await browser.get((await browser.get(link)).headers["location"])

    password = await browser.post(
        "/login",
        data={**hidden_fields(login.text, "/login"), "username": "alice", "password": PASSWORD},
    )
    assert password.status_code == 303
    second_step = await browser.get(password.headers["location"])
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = await browser.post(
        "/login/mfa", data={**hidden_fields(second_step.text, "/login/mfa"), "otp": code}
    )

    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == link
    page = await browser.get(link)  # the code just given is a fresh second factor
    assert page.status_code == 200 and "alice-laptop" in page.text


async def test_a_second_factor_older_than_ten_minutes_is_asked_for_again_first(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, clock: FixedClock
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="admin:root").secret
    pending = svc.auth.login("alice", PASSWORD, source_ip="127.0.0.1", user_agent="test")
    full = svc.auth.complete_second_factor(
        pending.record, method="otp", source_ip="127.0.0.1", user_agent="test"
    )
    browser.cookies.set("nt_session", full.token)
    clock.advance(timedelta(minutes=11))
    link = bind_link(bind_proof(svc, laptop))  # a fresh link; the sign-in is not

    asked = await browser.get(link)
    assert asked.status_code == 303
    stepup = urlsplit(asked.headers["location"])
    assert stepup.path == "/stepup"
    assert parse_qs(stepup.query)["next"] == [link]
    form = await browser.get(asked.headers["location"])
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = await browser.post(
        "/stepup", data={**hidden_fields(form.text, "/stepup"), "otp": code}
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == link

    page = await browser.get(link)
    assert page.status_code == 200 and "alice-laptop" in page.text


async def test_the_page_names_the_device_and_offers_its_platform_passkey(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice
) -> None:
    sign_in_with_password(svc, browser)
    proof = bind_proof(svc, laptop)

    page = await browser.get(bind_link(proof))

    assert page.status_code == 200
    assert "Bind this browser to a device" in page.text
    assert "<strong>alice-laptop</strong>" in page.text and laptop.device_id in page.text
    assert 'data-begin="/account/devices/bind/begin"' in page.text
    assert f'data-proof="{proof}"' in page.text
    # Showing the page spends nothing: the same link still binds.
    assert (await bind_begin(browser, proof)).status_code == 200


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another person's device", "the link names no device of yours"),
        ("signed with another key", "not signed by this device"),
        ("made too long ago", "the link was made 301 s ago and is good for 300 s"),
    ],
)
async def test_a_bad_link_shows_why_it_was_refused_and_binds_nothing(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, case: str, reason: str
) -> None:
    window = timedelta(seconds=svc.settings.devices.report_max_age_seconds)
    proof = {
        "another person's device": lambda: bind_proof(
            svc, enrolled_device(svc, "bob", "bob-laptop")
        ),
        "signed with another key": lambda: bind_proof(svc, laptop, signer=SoftDevice()),
        "made too long ago": lambda: bind_proof(svc, laptop, age=window + timedelta(seconds=1)),
    }[case]()
    sign_in_with_password(svc, browser)
    before = db_state(svc)

    page = await browser.get(bind_link(proof))

    assert page.status_code == 403
    assert "This browser was not bound" in page.text and reason in page.text
    assert db_state(svc) == before
    begun = await bind_begin(browser, proof)  # the button, had the page offered one
    assert (begun.status_code, begun.json()["error"]) == (401, REFUSED)
    assert reason in begun.json()["detail"]
    assert alices_passkeys(svc) == []
    assert [(outcome, detail) for outcome, _, detail in bind_audit(svc)] == [
        (Outcome.FAILURE, begun.json()["detail"])
    ]


# The ceremony


async def test_binding_registers_the_platform_passkey_as_the_devices(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)
    proof = bind_proof(svc, laptop)

    begun = await bind_begin(browser, proof)
    assert begun.status_code == 200, begun.text
    assert begun.json()["authenticatorSelection"]["authenticatorAttachment"] == "platform"
    finished = await register_finish(browser, key.create(begun.text), name="laptop browser")

    assert finished.status_code == 200, finished.text
    assert finished.json()["redirect"] == "/account#devices"
    assert alices_passkeys(svc) == [("laptop browser", laptop.device_id)]
    account = await browser.get("/account")
    assert "laptop browser" in account.text
    assert '<span class="pill ok" title="this computer' in account.text
    assert f"device {laptop.device_id}</span>" in account.text
    assert bind_audit(svc) == [(Outcome.SUCCESS, f"device:{laptop.device_id}", "")]


async def test_a_link_binds_once(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)
    proof = bind_proof(svc, laptop)
    begun = await bind_begin(browser, proof)
    assert begun.status_code == 200, begun.text

    again = await bind_begin(browser, proof)

    assert again.status_code == 401
    assert again.json()["error"] == REFUSED
    assert "already used" in again.json()["detail"]
    # Opening the used link again says so on the page, before any button is offered.
    page = await browser.get("/account/devices/bind", params={"proof": proof})
    assert page.status_code == 403
    assert "already used" in page.text
    # The ceremony the link began still finishes; the replay began none.
    finished = await register_finish(browser, key.create(begun.text))
    assert finished.status_code == 200, finished.text
    assert alices_passkeys(svc) == [("laptop browser", laptop.device_id)]
    assert [outcome for outcome, _, _ in bind_audit(svc)] == [Outcome.SUCCESS, Outcome.FAILURE]


async def test_the_button_too_needs_a_fresh_second_factor_and_spends_nothing_without(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, clock: FixedClock
) -> None:
    svc.totp.enroll_confirmed("alice", actor="admin:root")
    pending = svc.auth.login("alice", PASSWORD, source_ip="127.0.0.1", user_agent="test")
    full = svc.auth.complete_second_factor(
        pending.record, method="otp", source_ip="127.0.0.1", user_agent="test"
    )
    browser.cookies.set("nt_session", full.token)
    clock.advance(timedelta(minutes=11))  # e.g. the page was left open that long

    begun = await bind_begin(browser, bind_proof(svc, laptop))

    assert (begun.status_code, begun.json()["error"]) == (403, "fresh-factor-required")
    assert bind_audit(svc) == []  # the link was not spent


async def test_a_quarantined_device_gains_no_browser(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice
) -> None:
    svc.devices.quarantine(laptop.device_id, actor="admin:root")
    sign_in_with_password(svc, browser)
    proof = bind_proof(svc, laptop)

    page = await browser.get(bind_link(proof))
    begun = await bind_begin(browser, proof)

    assert page.status_code == 403 and "is quarantined" in page.text
    assert (begun.status_code, begun.json()["error"]) == (401, REFUSED)
    assert "quarantined" in begun.json()["detail"]
    assert alices_passkeys(svc) == []
    [(outcome, target, detail)] = bind_audit(svc)
    assert (outcome, target) == (Outcome.FAILURE, f"device:{laptop.device_id}")
    assert "quarantined" in detail


async def test_a_roaming_authenticator_cannot_become_the_devices_passkey(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)
    begun = await bind_begin(browser, bind_proof(svc, laptop))
    credential = key.create(begun.text)
    credential["authenticatorAttachment"] = "cross-platform"  # a security key or a phone

    finished = await register_finish(browser, credential)

    assert finished.status_code == 400
    assert finished.json()["error"] == "passkey-registration-failed"
    assert "platform" in finished.json()["detail"]
    assert alices_passkeys(svc) == []


# Sessions carry the device


async def test_a_passkey_first_sign_in_with_the_devices_passkey_carries_the_device(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, bound_key: SoftAuthenticator
) -> None:
    token = await sign_in_with_passkey(browser, bound_key)

    assert session_of(svc, token).device_id == laptop.device_id
    # Admins see which sessions are device-bound: the API and the console's Sessions page.
    svc.directory.add_group("admins", actor="admin:root")
    svc.directory.add_user("root", actor="admin:root", password=PASSWORD)
    svc.directory.set_membership("admins", "root", True, actor="admin:root")
    async with client_for(svc, "root") as admin:
        listed = (await admin.get("/api/v1/sessions", params={"user": "alice"})).json()
        console = await admin.get("/console/sessions")
    by_id = {s["id"]: s["device_id"] for s in listed}  # the binding's own password session too
    assert by_id[hash_token(token)[:12]] == laptop.device_id
    assert set(by_id.values()) == {laptop.device_id, None}
    assert f"device {laptop.device_id}</span>" in console.text


async def test_the_devices_passkey_as_second_factor_carries_the_device(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, bound_key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)  # pending: alice has a passkey now
    assert "nt_pending" in browser.cookies

    begun = await browser.post("/webauthn/login/begin")
    finished = await browser.post(
        "/webauthn/login/finish", json={"credential": bound_key.get(begun.text)}
    )

    assert finished.status_code == 200, finished.text
    session = session_of(svc, set_cookies(finished)["nt_session"]["nt_session"].value)
    assert session.device_id == laptop.device_id
    assert "pwd" in session.auth_methods and "webauthn" in session.auth_methods


async def test_a_code_step_up_keeps_the_device_and_app_sessions_inherit_it(
    svc: Services,
    browser: httpx.AsyncClient,
    laptop: SoftDevice,
    bound_key: SoftAuthenticator,
    clock: FixedClock,
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="admin:root").secret
    svc.catalog.add_app(APP, upstream="http://127.0.0.1:9", actor="admin:root")
    await sign_in_with_passkey(browser, bound_key)
    form = await browser.get("/stepup", params={"methods": "otp", "max_age": "60"})

    stepped = await browser.post(
        "/stepup",
        data={**hidden_fields(form.text, "/stepup"), "otp": pyotp.TOTP(secret).at(clock.now())},
    )

    assert stepped.status_code == 303
    session = session_of(svc, set_cookies(stepped)["nt_session"]["nt_session"].value)
    assert "otp" in session.auth_methods
    assert session.device_id == laptop.device_id
    authorized = await browser.get(
        "/authorize", params={"rd": svc.settings.app_url(APP) + "/", "state": "st-1"}
    )
    assert authorized.status_code == 303
    [code] = parse_qs(urlsplit(authorized.headers["location"]).query)["code"]
    _, app_session, _ = svc.handoff.redeem(
        code, app_name=APP, state="st-1", source_ip="127.0.0.1", user_agent="test"
    )
    assert app_session.device_id == laptop.device_id


async def test_an_ordinary_passkey_carries_no_device(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)
    begun = await browser.post("/webauthn/register/begin")
    assert "authenticatorAttachment" not in begun.json()["authenticatorSelection"]
    assert (await register_finish(browser, key.create(begun.text))).status_code == 200

    token = await sign_in_with_passkey(browser, key)

    assert session_of(svc, token).device_id is None
    assert alices_passkeys(svc) == [("laptop browser", None)]


# The gateway decides on the device's state


async def open_app(svc: Services, browser: httpx.AsyncClient, port: int) -> str:
    """The hand-off as a browser makes it: the portal's /authorize answers a one-time code
    for the app host, whose callback (on the running gateway) trades it for the app
    session cookie. Returns that cookie's value."""
    authorized = await browser.get(
        "/authorize", params={"rd": svc.settings.app_url(APP) + "/hello", "state": "st-1"}
    )
    assert authorized.status_code == 303, authorized.text
    callback = urlsplit(authorized.headers["location"])
    assert callback.path == "/.nevertrust/callback"
    answered = await gateway_get(port, f"{callback.path}?{callback.query}", f"{STATE_COOKIE}=st-1")
    assert answered.status_code in (302, 303), answered.text
    return set_cookies(answered)[APP_SESSION_COOKIE][APP_SESSION_COOKIE].value


async def gateway_get(port: int, path: str, cookie: str) -> httpx.Response:
    """One request to the app host, with exactly ``cookie`` (no jar in between)."""
    async with httpx.AsyncClient() as client:
        return await client.get(
            f"http://127.0.0.1:{port}{path}",
            headers={"host": f"{APP}.localhost:{port}", "cookie": cookie},
        )


async def app_get(port: int, app_session: str) -> tuple[int, str]:
    answer = await gateway_get(port, "/hello", f"{APP_SESSION_COOKIE}={app_session}")
    return answer.status_code, answer.text


async def test_a_bound_browser_opens_a_device_only_app_until_the_device_is_quarantined(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        svc.catalog.set_rule(APP, "staff", True, actor="admin:root", require_compliant_device=True)
        async with platform(svc) as (_, port):
            # Her password session proves no device, though she owns a compliant one.
            password_only = await app_get(port, app_token(svc, "alice", APP))
            sign_in_with_password(svc, browser)
            assert (await bind_this_browser(browser, key, bind_proof(svc, laptop))).is_success
            await sign_in_with_passkey(browser, key)
            app_session = await open_app(svc, browser, port)

            admitted = await app_get(port, app_session)
            svc.devices.quarantine(laptop.device_id, actor="admin:root")
            quarantined = await app_get(port, app_session)

    assert password_only[0] == 403 and "device-unknown" in password_only[1]
    assert admitted == (200, "hello /hello")
    assert quarantined[0] == 403 and "device-noncompliant" in quarantined[1]
    assert [h["x-nevertrust-user"] for h in up.seen_headers] == ["alice"]


async def test_a_noncompliant_report_closes_the_app_and_a_compliant_one_reopens_it(
    svc: Services,
    browser: httpx.AsyncClient,
    laptop: SoftDevice,
    bound_key: SoftAuthenticator,
    clock: FixedClock,
) -> None:
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        svc.catalog.set_rule(APP, "staff", True, actor="admin:root", require_compliant_device=True)
        await sign_in_with_passkey(browser, bound_key)
        async with platform(svc) as (_, port):
            app_session = await open_app(svc, browser, port)

            clock.advance(timedelta(seconds=1))
            bad = laptop.report(posture(disk_encrypted=False), at=clock.now())
            assert not svc.device_enrolment.report(laptop.device_id, bad).compliant
            closed = await app_get(port, app_session)
            clock.advance(timedelta(seconds=1))
            good = laptop.report(at=clock.now())
            assert svc.device_enrolment.report(laptop.device_id, good).compliant
            reopened = await app_get(port, app_session)

    assert closed[0] == 403 and "device-noncompliant" in closed[1]
    assert reopened == (200, "hello /hello")


async def test_a_session_from_an_ordinary_passkey_is_refused_by_the_same_rule(
    svc: Services, browser: httpx.AsyncClient, laptop: SoftDevice, key: SoftAuthenticator
) -> None:
    sign_in_with_password(svc, browser)
    begun = await browser.post("/webauthn/register/begin")
    assert (await register_finish(browser, key.create(begun.text))).status_code == 200
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        svc.catalog.set_rule(APP, "staff", True, actor="admin:root", require_compliant_device=True)
        await sign_in_with_passkey(browser, key)
        async with platform(svc) as (_, port):
            app_session = await open_app(svc, browser, port)
            refused = await app_get(port, app_session)

    assert refused[0] == 403 and "device-unknown" in refused[1]
    assert up.seen_headers == []
