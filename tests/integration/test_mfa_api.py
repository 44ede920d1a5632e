"""/api/v1/users/{name}/mfa through the real portal app, on both backends."""

from __future__ import annotations

import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock

from ._support import client_for

BASE = "http://auth.localhost"


def oathtool_at(secret: str, clock: FixedClock) -> str:
    out = subprocess.run(
        ["oathtool", "--totp", "-b", "-N", f"@{int(clock.now().timestamp())}", secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return out.stdout.strip()


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


async def test_an_admin_provisions_an_authenticator_whose_codes_then_work(
    svc: Services, admin: httpx.AsyncClient, clock: FixedClock
) -> None:
    before = await admin.get("/api/v1/users/alice/mfa")
    assert before.status_code == 200, before.text
    assert before.json() == {
        "user": "alice",
        "totp": False,
        "totp_pending": False,
        "totp_confirmed_at": None,
        "passkeys": 0,
        "recovery_codes": 0,
    }

    created = await admin.post("/api/v1/users/alice/mfa/totp")

    assert created.status_code == 201, created.text
    body = created.json()
    assert parse_qs(urlsplit(body["uri"]).query)["secret"] == [body["secret"]]
    alice_id = svc.directory.get_user("alice").id
    assert svc.totp.verify(alice_id, oathtool_at(body["secret"], clock))
    after = (await admin.get("/api/v1/users/alice/mfa")).json()
    assert (after["totp"], after["totp_pending"]) == (True, False)
    # The secret is shown once: reading the status never returns it.
    assert body["secret"] not in (await admin.get("/api/v1/users/alice/mfa")).text


async def test_removing_the_authenticator_says_whether_there_was_one(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    await admin.post("/api/v1/users/alice/mfa/totp")

    first = await admin.delete("/api/v1/users/alice/mfa/totp")
    second = await admin.delete("/api/v1/users/alice/mfa/totp")

    assert (first.status_code, first.json()) == (200, {"removed": True})
    assert (second.status_code, second.json()) == (200, {"removed": False})
    assert (await admin.get("/api/v1/users/alice/mfa")).json()["totp"] is False


async def test_new_recovery_codes_are_returned_once_and_work(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    response = await admin.post("/api/v1/users/alice/mfa/recovery-codes")

    assert response.status_code == 201, response.text
    codes = response.json()["codes"]
    assert len(codes) == 10
    assert (await admin.get("/api/v1/users/alice/mfa")).json()["recovery_codes"] == 10
    assert svc.recovery_codes.redeem(svc.directory.get_user("alice").id, codes[0])
    assert (await admin.get("/api/v1/users/alice/mfa")).json()["recovery_codes"] == 9


async def test_unknown_users_are_404_with_a_stable_code(admin: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/users/nobody/mfa"),
        ("POST", "/api/v1/users/nobody/mfa/totp"),
        ("DELETE", "/api/v1/users/nobody/mfa/totp"),
        ("POST", "/api/v1/users/nobody/mfa/recovery-codes"),
    ]:
        response = await admin.request(method, path)
        assert (response.status_code, response.json()["error"]) == (404, "unknown-user"), path


async def test_only_admins_with_a_csrf_token_may_change_factors(svc: Services) -> None:
    async with client_for(svc, None) as anonymous:
        assert (await anonymous.get("/api/v1/users/alice/mfa")).status_code == 401
    async with client_for(svc, "alice") as alice:
        refused = await alice.post("/api/v1/users/alice/mfa/totp")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    async with client_for(svc, "root") as admin:
        del admin.headers["x-csrf-token"]
        for method, path in [
            ("POST", "/api/v1/users/alice/mfa/totp"),
            ("DELETE", "/api/v1/users/alice/mfa/totp"),
            ("POST", "/api/v1/users/alice/mfa/recovery-codes"),
        ]:
            response = await admin.request(method, path)
            assert (response.status_code, response.json()["error"]) == (403, "csrf-failed")
        assert (await admin.get("/api/v1/users/alice/mfa")).json()["totp"] is False


async def test_the_openapi_document_describes_the_mfa_endpoints(admin: httpx.AsyncClient) -> None:
    spec = (await admin.get("/api/v1/openapi.json")).json()

    paths = spec["paths"]
    assert set(paths["/users/{name}/mfa/totp"]) == {"post", "delete"}
    assert "get" in paths["/users/{name}/mfa"]
    assert "post" in paths["/users/{name}/mfa/recovery-codes"]
    status = spec["components"]["schemas"]["MfaStatusOut"]["properties"]
    assert {"totp", "totp_pending", "passkeys", "recovery_codes"} <= set(status)
    assert "uri" in spec["components"]["schemas"]["TotpEnrolmentOut"]["properties"]
