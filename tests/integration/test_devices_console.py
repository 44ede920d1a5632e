"""The console's device page and the account page's devices (real portal, both backends)."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from tests.soft_device import SoftDevice, posture

from ._support import audit_actions, changes, client_for, last_change_id

PAGE = "/console/devices"
_COMMAND = re.compile(
    r"nevertrust agent enroll --server (\S+) --token (ntd_[A-Za-z0-9_-]{43})</code>"
)


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


def form_token(client: httpx.AsyncClient) -> str:
    return client.headers["x-csrf-token"]


def enrol(svc: Services, user: str = "alice", **changes_: object) -> str:
    soft = SoftDevice()
    token = svc.device_enrolment.create_token(user, actor="cli:root").token
    done = svc.device_enrolment.enrol(
        token=token,
        public_key_pem=soft.public_pem,
        name=f"{user}-laptop",
        posture=posture(**changes_),
    )
    return done.device.device_id


async def test_the_page_is_for_admins_only(svc: Services) -> None:
    async with client_for(svc, None) as anonymous, client_for(svc, "alice") as alice:
        assert (await anonymous.get(PAGE)).headers["location"] == "/login"
        refused = await alice.get(PAGE)
        assert refused.status_code == 403 and "Administrators only" in refused.text
        forged = await alice.post(
            PAGE + "/dev_x/quarantine", data={"csrf_token": form_token(alice)}
        )
        assert forged.status_code == 403


async def test_the_inventory_shows_states_owners_reasons_and_counts(
    svc: Services, admin_browser: httpx.AsyncClient
) -> None:
    good = enrol(svc)
    bad = enrol(svc, "root", disk_encrypted=False, platform="linux")
    page = await admin_browser.get(PAGE)
    assert page.status_code == 200
    assert 'href="/console/devices"' in page.text  # in the console navigation
    row = page.text[page.text.index(f'id="device-{bad}"') :]
    row = row[: row.index("</tr>")]
    assert "noncompliant" in row and "root" in row and "disk-not-encrypted" in row
    assert "linux" in row and "managed" in row
    assert f'id="device-{good}"' in page.text
    assert '<td id="devices-total">2</td>' in page.text
    assert '<td id="devices-compliant">1</td>' in page.text
    assert '<td id="devices-compliant-percent">50.0 %</td>' in page.text


async def test_quarantine_and_release_buttons_need_the_csrf_token(
    svc: Services, admin_browser: httpx.AsyncClient
) -> None:
    device_id = enrol(svc)
    expired = await admin_browser.post(f"{PAGE}/{device_id}/quarantine", data={})
    assert expired.status_code == 403 and "Form expired" in expired.text
    assert svc.devices.get(device_id).state == "compliant"

    after = last_change_id(svc)
    done = await admin_browser.post(
        f"{PAGE}/{device_id}/quarantine", data={"csrf_token": form_token(admin_browser)}
    )
    assert done.status_code == 303 and "quarantined" in done.headers["location"]
    assert svc.devices.get(device_id).state == "quarantined"
    assert changes(svc, after=after) == [ChangeEvent(Topic.DEVICE, device_id)]
    page = await admin_browser.get(PAGE)
    assert f'action="/console/devices/{device_id}/release"' in page.text

    released = await admin_browser.post(
        f"{PAGE}/{device_id}/release", data={"csrf_token": form_token(admin_browser)}
    )
    assert released.status_code == 303
    assert svc.devices.get(device_id).state == "compliant"
    unknown = await admin_browser.post(
        f"{PAGE}/{device_id}/explode", data={"csrf_token": form_token(admin_browser)}
    )
    assert unknown.status_code == 404


async def test_an_admin_makes_a_token_shown_once_with_the_agent_command(
    svc: Services, admin_browser: httpx.AsyncClient
) -> None:
    made = await admin_browser.post(
        PAGE + "/tokens", data={"csrf_token": form_token(admin_browser), "user": "alice"}
    )
    assert made.status_code == 200
    [(server, token)] = _COMMAND.findall(made.text)
    assert server == svc.settings.portal_url
    assert made.headers["cache-control"] == "no-store"
    assert token not in (await admin_browser.get(PAGE)).text
    nobody = await admin_browser.post(
        PAGE + "/tokens", data={"csrf_token": form_token(admin_browser), "user": "nobody"}
    )
    assert nobody.status_code == 404 and "no user named" in nobody.text


async def test_a_person_enrols_their_own_device_from_the_account_page(svc: Services) -> None:
    async with client_for(svc, "alice") as alice:
        page = await alice.get("/account")
        assert "No device of yours is enrolled." in page.text
        assert 'action="/account/devices/enrol"' in page.text

        shown = await alice.post("/account/devices/enrol", data={"csrf_token": form_token(alice)})
        assert shown.status_code == 200
        [(server, token)] = _COMMAND.findall(shown.text)
        assert server == svc.settings.portal_url
        soft = SoftDevice()
        done = svc.device_enrolment.enrol(
            token=token, public_key_pem=soft.public_pem, name="alice-mac", posture=posture()
        )
        assert done.device.username == "alice"

        page = await alice.get("/account")
        assert "alice-mac" in page.text and done.device.device_id in page.text
        enrol(svc, "root")
        assert "root-laptop" not in (await alice.get("/account")).text  # only her own


async def test_enrolling_from_the_account_needs_a_fresh_second_factor(
    svc: Services, clock: FixedClock
) -> None:
    async with client_for(svc, "alice") as alice:  # signed in with a password only
        enrolment = svc.totp.begin_enrolment("alice", actor="user:alice")
        svc.totp.confirm("alice", pyotp.TOTP(enrolment.secret).at(clock.now()))
        asked = await alice.post("/account/devices/enrol", data={"csrf_token": form_token(alice)})
        assert asked.status_code == 303 and asked.headers["location"].startswith("/stepup?")
        without = await alice.post("/account/devices/enrol", data={})
        assert without.status_code == 403
    assert "devices:token:created" not in audit_actions(svc)
