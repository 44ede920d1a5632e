"""The REST API with service-account keys: scopes, the admins group, refusals, key admin.

The real portal app (API mounted at /api/v1) in-process, on both storage backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.identity.api_keys import parse_key
from nevertrust.web.api import build_api
from nevertrust.web.portal import PortalContext, build_portal

from ._support import PASSWORD, audit_records

ROOT = "cli:root"
API = "/api/v1"


@pytest.fixture
def svc(any_services: Services) -> Services:
    svc = any_services
    svc.directory.add_user("alice", actor=ROOT, password=PASSWORD)
    svc.directory.add_group("admins", actor=ROOT)
    svc.directory.set_membership("admins", "alice", True, actor=ROOT)
    svc.service_accounts.create("ops-bot", owner="alice", actor=ROOT)
    svc.directory.set_membership("admins", "ops-bot", True, actor=ROOT)
    svc.service_accounts.create("app-bot", owner="alice", actor=ROOT)  # not an admin
    return svc


@pytest.fixture
async def client(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    portal = build_portal(PortalContext(svc), api=build_api(svc))
    transport = httpx.ASGITransport(app=portal, client=("192.0.2.44", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.localhost") as c:
        yield c


def key(svc: Services, account: str = "ops-bot", *scopes: str) -> str:
    plaintext, _ = svc.service_accounts.issue_key(
        account, "test", list(scopes) or ["api:read"], actor=ROOT
    )
    return plaintext


def bearer(plaintext: str) -> dict[str, str]:
    return {"authorization": f"Bearer {plaintext}"}


def rejected(svc: Services) -> list[str]:
    return [r.reason for r in audit_records(svc) if r.action == Action.API_KEY_REJECTED]


async def test_a_read_key_of_an_admin_account_may_read(
    svc: Services, client: httpx.AsyncClient
) -> None:
    response = await client.get(API + "/service-accounts", headers=bearer(key(svc)))

    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["name"] for a in body] == ["app-bot", "ops-bot"]
    [ops] = [a for a in body if a["name"] == "ops-bot"]
    assert ops["owner"] == "alice" and ops["groups"] == ["admins"]
    assert set(ops["keys"][0]) == {
        "prefix", "name", "scopes", "created_at", "created_by", "expires_at",
        "last_used_at", "revoked_at", "status", "stale",
    }  # fmt: skip
    assert ops["keys"][0]["last_used_at"] is not None


async def test_a_read_only_key_is_refused_on_post(svc: Services, client: httpx.AsyncClient) -> None:
    plaintext = key(svc)

    response = await client.post(
        API + "/service-accounts",
        json={"name": "x-bot", "owner": "alice"},
        headers=bearer(plaintext),
    )

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "needs api:write" in response.json()["detail"]
    assert rejected(svc) == ["insufficient-scope"]
    assert [a.name for a in svc.service_accounts.inventory()] == ["app-bot", "ops-bot"]


async def test_a_write_key_may_change_things_without_csrf_and_is_named_in_the_audit(
    svc: Services, client: httpx.AsyncClient
) -> None:
    plaintext = key(svc, "ops-bot", "api:write")
    parsed = parse_key(plaintext)
    assert parsed is not None

    response = await client.post(
        API + "/service-accounts",
        json={"name": "x-bot", "owner": "alice", "description": "made by a bot"},
        headers=bearer(plaintext),
    )

    assert response.status_code == 201, response.text
    assert response.json()["owner"] == "alice"
    [created] = [
        r
        for r in audit_records(svc)
        if r.action == Action.SERVICE_ACCOUNT_CREATED and r.target == "user:x-bot"
    ]
    assert created.actor == f"user:ops-bot/key:{parsed.prefix}"


async def test_a_key_of_an_account_outside_admins_is_refused(
    svc: Services, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        API + "/service-accounts", headers=bearer(key(svc, "app-bot", "api:write"))
    )

    assert response.status_code == 403
    assert "not in the 'admins' group" in response.json()["detail"]
    assert rejected(svc) == ["not-in-admins"]


async def test_revoked_expired_and_malformed_keys_get_401(
    svc: Services, client: httpx.AsyncClient, clock: FixedClock
) -> None:
    revoked = key(svc)
    parsed = parse_key(revoked)
    assert parsed is not None
    svc.service_accounts.revoke_key(parsed.prefix, actor=ROOT)
    expiring, _ = svc.service_accounts.issue_key(
        "ops-bot", "short", ["api:read"], timedelta(hours=1), actor=ROOT
    )
    clock.advance(timedelta(hours=1))

    for headers in (
        bearer(revoked),
        bearer(expiring),
        bearer("ntk_nonsense"),
        {"authorization": "Basic YWxpY2U6cHc="},
        {"authorization": "Bearer"},
    ):
        response = await client.get(API + "/service-accounts", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "unauthenticated"
    again = await client.get(API + "/service-accounts", headers=bearer(revoked))
    assert "invalid API key" in again.json()["detail"]
    assert rejected(svc) == ["revoked", "expired", "malformed", "revoked"]
    assert parsed.secret not in repr(audit_records(svc))


async def test_keys_are_issued_listed_rotated_and_revoked_over_the_api(
    svc: Services, client: httpx.AsyncClient
) -> None:
    admin = bearer(key(svc, "ops-bot", "api:write"))

    issued = await client.post(
        API + "/service-accounts/app-bot/keys",
        json={"name": "deploy", "scopes": ["api:read"], "expires_in": "30d"},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert parse_key(body["key"]) is not None and body["key"].startswith("ntk_" + body["prefix"])
    assert svc.service_accounts.authenticate(body["key"]) is not None

    listed = (await client.get(API + "/service-accounts/app-bot/keys", headers=admin)).json()
    assert [k["prefix"] for k in listed] == [body["prefix"]]
    assert "key" not in listed[0] and "secret_hash" not in listed[0]

    rotated = await client.post(
        API + f"/service-accounts/keys/{body['prefix']}/rotate", json={"grace": "0s"}, headers=admin
    )
    assert rotated.status_code == 201, rotated.text
    assert svc.service_accounts.authenticate(body["key"]) is None
    assert svc.service_accounts.authenticate(rotated.json()["key"]) is not None

    new_prefix = rotated.json()["prefix"]
    gone = await client.delete(API + f"/service-accounts/keys/{new_prefix}", headers=admin)
    assert gone.json() == {"changed": True}
    assert svc.service_accounts.authenticate(rotated.json()["key"]) is None


async def test_bad_key_requests_are_refused_with_clear_errors(
    svc: Services, client: httpx.AsyncClient
) -> None:
    admin = bearer(key(svc, "ops-bot", "api:write"))

    unknown_scope = await client.post(
        API + "/service-accounts/app-bot/keys",
        json={"name": "k", "scopes": ["root"]},
        headers=admin,
    )
    forever = await client.post(
        API + "/service-accounts/app-bot/keys",
        json={"name": "k", "scopes": ["api:read"], "expires_in": "400d"},
        headers=admin,
    )
    missing = await client.delete(API + "/service-accounts/keys/aaaaaaaaaa", headers=admin)

    assert (unknown_scope.status_code, unknown_scope.json()["error"]) == (400, "unknown-scope")
    assert (forever.status_code, forever.json()["error"]) == (400, "invalid-duration")
    assert (missing.status_code, missing.json()["error"]) == (404, "unknown-api-key")


async def test_cookie_sessions_still_need_the_csrf_header(
    svc: Services, client: httpx.AsyncClient
) -> None:
    issued = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="pytest")
    client.cookies.set("nt_session", issued.token)

    assert (await client.get(API + "/service-accounts")).status_code == 200
    response = await client.post(
        API + "/service-accounts", json={"name": "y-bot", "owner": "alice"}
    )
    assert response.status_code == 403


async def test_identity_report_over_the_api(svc: Services, client: httpx.AsyncClient) -> None:
    response = await client.get(
        API + "/reports/identity?inactive_days=30", headers=bearer(key(svc))
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inactive_days"] == 30
    assert (body["people"], body["people_with_mfa"], body["people_without_mfa"]) == (
        1,
        0,
        ["alice"],
    )
    assert body["service_accounts"] == 2
    bad = await client.get(API + "/reports/identity?inactive_days=0", headers=bearer(key(svc)))
    assert bad.status_code == 422


async def test_guessing_keys_from_one_address_gets_it_banned_like_password_guessing(
    svc: Services, client: httpx.AsyncClient
) -> None:
    good = key(svc)
    prefix = good.split("_")[1]
    wrong = f"ntk_{prefix}_{'A' * 43}"
    limit = svc.settings.regulation.max_retries
    for _ in range(limit):
        assert (await client.get(f"{API}/users", headers=bearer(wrong))).status_code == 401

    # The key's prefix is banned now: even the right secret is refused, with the same answer.
    refused = await client.get(f"{API}/users", headers=bearer(good))
    assert refused.status_code == 401
    assert rejected(svc)[-1] == "banned"
    assert any(b.subject == f"user:api-key:{prefix}" for b in svc.regulator.list_bans())

    svc.regulator.lift(f"user:api-key:{prefix}", actor=ROOT)
    assert (await client.get(f"{API}/users", headers=bearer(good))).status_code == 200
