"""Forward-auth endpoints on the main port, in process: what each proxy convention is told.

Real proxies in front (nginx, Caddy) are exercised in tests/e2e; here the answers
themselves are pinned: allow with identity headers, sign-in, deny with reasons, and
refusal of callers that are not our proxies.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.errors import BackendUnavailable
from nevertrust.gateway import APP_SESSION_COOKIE, verify_assertion
from nevertrust.server import Runtime

from ._gateway import app_token
from ._support import PASSWORD, audit_records

APP = "wiki"
APP_URL = f"http://{APP}.localhost:8080"


@pytest.fixture
def svc(any_services: Services) -> Services:
    directory = any_services.directory
    for name in ("alice", "bob"):
        directory.add_user(name, actor="admin:root", password=PASSWORD)
    directory.add_group("staff", actor="admin:root")
    directory.set_membership("staff", "alice", True, actor="admin:root")
    any_services.catalog.add_app(APP, upstream="http://127.0.0.1:9", actor="admin:root")
    any_services.catalog.set_rule(APP, "staff", True, actor="admin:root")
    return any_services


@contextlib.asynccontextmanager
async def serving(
    svc: Services, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = Runtime(svc)
    await runtime.start()
    transport = httpx.ASGITransport(app=runtime.asgi, client=(client_ip, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
            yield runtime, c
    finally:
        await runtime.stop()


def caddy_headers(uri: str = "/docs?page=2", *, token: str | None = None) -> dict[str, str]:
    headers = {
        "x-forwarded-method": "GET",
        "x-forwarded-proto": "http",
        "x-forwarded-host": f"{APP}.localhost:8080",
        "x-forwarded-uri": uri,
        "x-forwarded-for": "198.51.100.9",
    }
    if token is not None:
        headers["cookie"] = f"{APP_SESSION_COOKIE}={token}"
    return headers


def nginx_headers(uri: str = "/docs", *, token: str | None = None) -> dict[str, str]:
    headers = {
        "x-original-url": f"http://{APP}.localhost:8080{uri}",
        "x-original-method": "GET",
        "x-forwarded-for": "198.51.100.9",
    }
    if token is not None:
        headers["cookie"] = f"{APP_SESSION_COOKIE}={token}"
    return headers


async def test_allowed_request_gets_200_with_identity_headers_and_a_valid_assertion(
    svc: Services,
) -> None:
    token = app_token(svc, "alice", APP)
    async with serving(svc) as (_, client):
        response = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )
        jwks = svc.keys.jwks()

    assert response.status_code == 200
    assert response.headers["x-nevertrust-user"] == "alice"
    assert response.headers["x-nevertrust-groups"] == "staff"
    claims = verify_assertion(
        response.headers["x-nevertrust-assertion"],
        jwks=jwks,
        expected_issuer=svc.settings.portal_url,
        expected_audience=svc.settings.app_url(APP),
        now=svc.clock.now(),
    )
    assert claims["name"] == "alice"


async def test_caddy_and_traefik_without_a_session_are_redirected_to_sign_in(
    svc: Services,
) -> None:
    async with serving(svc) as (_, client):
        response = await client.get("/.nevertrust/authz/forward-auth", headers=caddy_headers())

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "http://auth.localhost:8080/authorize"
    )
    query = parse_qs(location.query)
    assert query["rd"] == [f"{APP_URL}/docs?page=2"]
    # The state in the link is the one set as a cookie on the app host.
    assert f"_nt_state={query['state'][0]}" in response.headers["set-cookie"]


async def test_nginx_without_a_session_gets_401_with_the_sign_in_location(svc: Services) -> None:
    async with serving(svc) as (_, client):
        response = await client.get("/.nevertrust/authz/auth-request", headers=nginx_headers())

    assert response.status_code == 401
    assert response.headers["location"].startswith("http://auth.localhost:8080/authorize?rd=")
    assert "_nt_state=" in response.headers["set-cookie"]


async def test_denied_user_gets_403_with_the_reason_and_the_decision_is_audited(
    svc: Services,
) -> None:
    token = app_token(svc, "bob", APP)
    async with serving(svc) as (runtime, client):
        caddy = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )
        nginx = await client.get(
            "/.nevertrust/authz/auth-request", headers=nginx_headers(token=token)
        )
        runtime.services.audit.flush_now()
        records = audit_records(svc)

    assert caddy.status_code == nginx.status_code == 403
    assert caddy.headers["x-nevertrust-reason"] == "not-in-allowed-group"
    assert nginx.headers["x-nevertrust-reason"] == "not-in-allowed-group"
    assert "not a member of any group allowed" in caddy.text
    denied = [r for r in records if r.action == "pdp:decision:denied"]
    assert len(denied) == 2
    assert denied[0].source == "198.51.100.9"  # the client as the proxy saw it


async def test_callers_outside_the_forward_auth_clients_are_refused(svc: Services) -> None:
    token = app_token(svc, "alice", APP)
    async with serving(svc, client_ip="192.0.2.50") as (_, client):
        response = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )

    assert response.status_code == 403
    assert response.headers["x-nevertrust-reason"] == "untrusted-client"
    assert "x-nevertrust-user" not in response.headers


@pytest.mark.parametrize(
    "uri", ["/docs/%2e%2e/admin%2Fx", "/a\\b", "/docs%00"], ids=["encoded-slash", "bs", "nul"]
)
async def test_an_ambiguous_path_is_refused_not_guessed(svc: Services, uri: str) -> None:
    token = app_token(svc, "alice", APP)
    async with serving(svc) as (_, client):
        caddy = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(uri, token=token)
        )
        nginx = await client.get(
            "/.nevertrust/authz/auth-request", headers=nginx_headers(uri, token=token)
        )

    assert caddy.status_code == 400
    assert nginx.status_code == 403  # nginx passes only 2xx, 401 and 403 on
    assert nginx.headers["x-nevertrust-reason"] == "bad-request"


async def test_duplicate_forwarded_headers_are_refused(svc: Services) -> None:
    token = app_token(svc, "alice", APP)
    headers = [(k, v) for k, v in caddy_headers(token=token).items()]
    headers.append(("x-forwarded-host", "other.localhost"))
    async with serving(svc) as (_, client):
        response = await client.get("/.nevertrust/authz/forward-auth", headers=headers)

    assert response.status_code == 400
    assert response.headers["x-nevertrust-reason"] == "bad-request"


async def test_a_session_for_another_app_does_not_open_this_one(svc: Services) -> None:
    svc.catalog.add_app("other", upstream="http://127.0.0.1:9", actor="admin:root")
    svc.catalog.set_rule("other", "staff", True, actor="admin:root")
    token = app_token(svc, "alice", APP)  # a wiki session
    headers = caddy_headers(token=token)
    headers["x-forwarded-host"] = "other.localhost:8080"
    async with serving(svc) as (_, client):
        response = await client.get("/.nevertrust/authz/forward-auth", headers=headers)

    assert response.status_code == 302


async def test_revoking_the_user_sessions_sends_the_next_request_to_sign_in(
    svc: Services,
) -> None:
    token = app_token(svc, "alice", APP)
    async with serving(svc) as (_, client):
        before = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )
        svc.sessions.revoke_user_sessions("alice", actor="admin:root")
        after = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )

    assert (before.status_code, after.status_code) == (200, 302)


async def test_a_proxy_that_does_not_say_who_the_client_is_is_refused(svc: Services) -> None:
    token = app_token(svc, "alice", APP)
    headers = caddy_headers(token=token)
    del headers["x-forwarded-for"]
    async with serving(svc) as (_, client):
        response = await client.get("/.nevertrust/authz/forward-auth", headers=headers)

    assert response.status_code == 400
    assert "X-Forwarded-For" in response.text


class _UnreachableSessions:
    """The real session service, except that storage no longer answers session reads."""

    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def session_by_hash(self, id_hash: str) -> None:
        raise BackendUnavailable("database unreachable")


async def test_a_session_store_outage_fails_closed_at_every_door(svc: Services) -> None:
    token = app_token(svc, "alice", APP)
    broken = dataclasses.replace(svc, sessions=_UnreachableSessions(svc.sessions))  # type: ignore[arg-type]
    async with serving(broken) as (_, client):
        caddy = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )
        nginx = await client.get(
            "/.nevertrust/authz/auth-request", headers=nginx_headers(token=token)
        )
        proxied = await client.get(
            "/docs",
            headers={"host": f"{APP}.localhost:8080", "cookie": f"{APP_SESSION_COOKIE}={token}"},
        )

    assert caddy.status_code == 503
    assert "cannot be checked right now" in caddy.text
    assert (nginx.status_code, nginx.headers["x-nevertrust-reason"]) == (403, "unavailable")
    assert proxied.status_code == 503
    assert "cannot be checked right now" in proxied.text


async def test_the_main_port_can_stop_answering_forward_auth(svc: Services) -> None:
    svc.settings.gateway.forward_auth_on_main_port = False
    token = app_token(svc, "alice", APP)
    async with serving(svc) as (_, client):
        response = await client.get(
            "/.nevertrust/authz/forward-auth", headers=caddy_headers(token=token)
        )
    assert response.status_code == 404
    assert "x-nevertrust-user" not in response.headers
