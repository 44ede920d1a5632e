"""Device enrolment, signed reports and device administration over the real API, on
SQLite and PostgreSQL, with real EC keys."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from tests.soft_device import SoftDevice, posture

from ._support import changes, client_for, db_state, last_change_id

JOSE = {"content-type": "application/jose"}


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


async def new_token(admin: httpx.AsyncClient, user: str = "alice") -> str:
    response = await admin.post("/api/v1/devices/tokens", json={"user": user})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def enrol(
    admin: httpx.AsyncClient, soft: SoftDevice, token: str | None = None, **body: Any
) -> httpx.Response:
    payload = {
        "token": token or await new_token(admin),
        "public_key": soft.public_pem,
        "name": "alice-laptop",
        "posture": posture(),
        **body,
    }
    return await admin.post("/api/v1/devices/enrol", json=payload)


async def enrolled(admin: httpx.AsyncClient) -> SoftDevice:
    soft = SoftDevice()
    response = await enrol(admin, soft)
    assert response.status_code == 201, response.text
    soft.device_id = response.json()["device_id"]
    return soft


async def report(admin: httpx.AsyncClient, soft: SoftDevice, jws: str) -> httpx.Response:
    return await admin.post(f"/api/v1/devices/{soft.device_id}/reports", content=jws, headers=JOSE)


async def test_enrolment_with_a_real_key_returns_a_certificate_of_our_ca(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    soft = SoftDevice()
    response = await enrol(admin, soft, ownership="personal")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["device_id"].startswith("dev_")
    assert (body["state"], body["reasons"]) == ("compliant", [])
    assert body["report_interval_seconds"] == svc.settings.devices.report_interval_seconds
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    ca = x509.load_pem_x509_certificate(body["ca_certificate"].encode())
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == soft.key.public_key()
    assert cert.not_valid_after_utc.isoformat() == body["certificate_expires_at"]
    listed = (await admin.get("/api/v1/devices")).json()
    assert [(d["device_id"], d["user"], d["ownership"], d["managed"]) for d in listed] == [
        (body["device_id"], "alice", "personal", False)
    ]


async def test_signed_reports_are_accepted_and_forged_stale_and_replayed_ones_refused(
    svc: Services, admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    soft = await enrolled(admin)
    good = soft.report(posture(disk_encrypted=False), at=clock.now())
    accepted = await report(admin, soft, good)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "state": "noncompliant",
        "compliant": False,
        "reasons": ["disk-not-encrypted"],
        "certificate": None,
        "certificate_expires_at": None,
    }
    before = db_state(svc)
    refused = {
        "report-signature-invalid": soft.report(at=clock.now(), key=SoftDevice().key),
        "report-replayed": good,
        "report-stale": soft.report(at=clock.now() - timedelta(minutes=10)),
        "report-wrong-device": soft.report(at=clock.now(), device_id="dev_someoneelse"),
    }
    for code, jws in refused.items():
        response = await report(admin, soft, jws)
        assert (response.status_code, response.json()["error"]) == (401, code), code
    for body in ("this is not a JWS", "x" * 100_000):
        malformed = await report(admin, soft, body)
        assert (malformed.status_code, malformed.json()["error"]) == (400, "report-malformed")
    assert db_state(svc) == before


async def test_malformed_posture_or_an_unknown_platform_stores_nothing(
    svc: Services, admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    soft = await enrolled(admin)
    token = await new_token(admin)
    before = db_state(svc)

    unknown = await enrol(admin, SoftDevice(), token, posture=posture(platform="haiku"))
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid-posture"
    assert unknown.json()["detail"].startswith("posture.platform: ")
    extra = await enrol(admin, SoftDevice(), token, posture={**posture(), "rooted": False})
    assert extra.json()["detail"].startswith("posture.rooted: ")
    not_json = await admin.post(
        "/api/v1/devices/enrol", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (422, "invalid-input")
    typo = await report(admin, soft, soft.report(posture(disk_encrypted="yes"), at=clock.now()))
    assert (typo.status_code, typo.json()["error"]) == (400, "invalid-posture")
    assert typo.json()["detail"].startswith("posture.disk_encrypted: ")
    assert db_state(svc) == before

    assert (await enrol(admin, SoftDevice(), token)).status_code == 201  # token still good


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("rsa", "expected an EC P-256 key, got RSA"),
        ("p384", "got curve secp384r1"),
        ("junk", "PEM 'PUBLIC KEY'"),
    ],
)
async def test_only_ec_p256_keys_enrol(admin: httpx.AsyncClient, key: str, message: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pems = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
        "p384": ec.generate_private_key(ec.SECP384R1()).public_key(),
    }
    pem = (
        pems[key].public_bytes(serialization.Encoding.PEM, spki).decode()
        if key in pems
        else "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    response = await enrol(admin, SoftDevice(), public_key=pem)
    assert (response.status_code, response.json()["error"]) == (400, "invalid-public-key")
    assert message in response.json()["detail"]


async def test_a_token_enrols_once_and_unknown_tokens_are_refused_alike(
    admin: httpx.AsyncClient,
) -> None:
    token = await new_token(admin)
    assert (await enrol(admin, SoftDevice(), token)).status_code == 201
    again = await enrol(admin, SoftDevice(), token)
    unknown = await enrol(admin, SoftDevice(), "ntd_" + "x" * 43)
    for response in (again, unknown):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid-enrolment-token"
    assert again.json()["detail"] == unknown.json()["detail"]


def race(token: str, contenders: tuple[Services, Services]) -> list[str]:
    """Enrol from each of ``contenders`` (separate engines, like two processes) at once."""
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def attempt(services: Services) -> None:
        soft = SoftDevice()
        barrier.wait()
        try:
            services.device_enrolment.enrol(
                token=token, public_key_pem=soft.public_pem, name="racer", posture=posture()
            )
            outcomes.append("enrolled")
        except Exception as exc:  # noqa: BLE001 - recorded and asserted by the caller
            outcomes.append(getattr(exc, "code", repr(exc)))

    threads = [threading.Thread(target=attempt, args=(s,)) for s in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_two_concurrent_enrolments_with_one_token_exactly_one_succeeds(
    svc: Services, peer: Services
) -> None:
    for _ in range(3):
        token = svc.device_enrolment.create_token("alice", actor="cli:root").token
        assert race(token, (svc, peer)) == ["enrolled", "invalid-enrolment-token"]
    assert len(svc.devices.list_devices()) == 3


async def test_quarantine_and_release_over_the_api_change_state_and_announce(
    svc: Services, admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    soft = await enrolled(admin)
    after = last_change_id(svc)
    response = await admin.post(
        f"/api/v1/devices/{soft.device_id}/quarantine", json={"reason": "lost on a train"}
    )
    assert response.json() == {"changed": True}
    assert changes(svc, after=after) == [ChangeEvent(Topic.DEVICE, soft.device_id)]
    shown = (await admin.get(f"/api/v1/devices/{soft.device_id}")).json()
    assert (shown["state"], shown["reasons"], shown["compliant"]) == (
        "quarantined",
        ["quarantined"],
        False,
    )
    reported = await report(admin, soft, soft.report(at=clock.now()))
    assert reported.json()["state"] == "quarantined"
    released = await admin.post(f"/api/v1/devices/{soft.device_id}/release")
    assert released.json() == {"changed": True}
    assert (await admin.get(f"/api/v1/devices/{soft.device_id}")).json()["state"] == "compliant"


async def test_a_removed_device_is_gone_and_its_reports_are_refused(
    admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    soft = await enrolled(admin)
    assert (await admin.delete(f"/api/v1/devices/{soft.device_id}")).status_code == 204
    missing = await admin.get(f"/api/v1/devices/{soft.device_id}")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown-device")
    refused = await report(admin, soft, soft.report(at=clock.now()))
    assert (refused.status_code, refused.json()["error"]) == (401, "device-not-enrolled")


async def test_policies_are_read_and_changed_and_devices_judged_again(
    admin: httpx.AsyncClient,
) -> None:
    soft = await enrolled(admin)
    assert (await admin.get("/api/v1/devices/policies/linux")).json()["max_patch_age_days"] == 30
    changed = await admin.put(
        "/api/v1/devices/policies/linux", json={"min_os_version": "13", "require_edr": True}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["min_os_version"], changed.json()["require_edr"]) == ("13", True)
    device = (await admin.get(f"/api/v1/devices/{soft.device_id}")).json()
    assert (device["state"], device["reasons"]) == ("noncompliant", ["os-too-old", "edr-missing"])
    bad = await admin.put("/api/v1/devices/policies/linux", json={"require_edr": "please"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid-device-policy")
    unknown = await admin.get("/api/v1/devices/policies/os2")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid-device-policy")
    platforms = [p["platform"] for p in (await admin.get("/api/v1/devices/policies")).json()]
    assert platforms == ["linux", "macos", "windows"]


async def test_the_inventory_report_counts_devices(
    admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    compliant = await enrolled(admin)
    failing = await enrolled(admin)
    await report(admin, failing, failing.report(posture(patch_age_days=90), at=clock.now()))
    quarantined = await enrolled(admin)
    await admin.post(f"/api/v1/devices/{quarantined.device_id}/quarantine")
    body = (await admin.get("/api/v1/reports/devices")).json()
    assert body["devices"] == 3
    assert body["by_state"] == {
        "registered": 0,
        "compliant": 1,
        "noncompliant": 1,
        "quarantined": 1,
    }
    assert body["compliant_percent"] == 33.3
    assert body["by_platform"]["linux"] == 3
    assert body["stale_devices"] == []
    assert compliant.device_id


async def test_device_administration_is_for_admins_only(svc: Services) -> None:
    async with client_for(svc, "alice") as alice, client_for(svc, None) as anonymous:
        for client, status in ((alice, 403), (anonymous, 401)):
            assert (await client.get("/api/v1/devices")).status_code == status
            assert (await client.get("/api/v1/reports/devices")).status_code == status
            tokens = await client.post("/api/v1/devices/tokens", json={"user": "alice"})
            assert tokens.status_code == status
            assert (await client.post("/api/v1/devices/dev_x/quarantine")).status_code == status


async def test_repeated_bad_tokens_from_one_address_are_banned_like_sign_ins(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    limit = svc.settings.regulation.ip_max_retries
    for n in range(limit):
        await enrol(admin, SoftDevice(), f"ntd_wrong{n:04d}" + "x" * 30)
    good = await new_token(admin)
    refused = await enrol(admin, SoftDevice(), good)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid-enrolment-token")
    assert svc.devices.list_devices() == []
