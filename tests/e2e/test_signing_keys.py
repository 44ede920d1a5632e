"""Rotating the assertion signing key on a live server, as an operator would.

Behind the gateway: the whoami demo and an upstream of our own, a Starlette app wrapped in
``nevertrust.upstream.AssertionMiddleware`` that also reports which key signed the
assertion it received. Both must keep verifying through the rotation, the JWKS must list
both keys during the overlap, and the gateway must switch to the new key by itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nevertrust.upstream import AssertionMiddleware, Identity
from tests.e2e.conftest import Platform, free_port

PASSWORD = "correct horse battery staple"


@contextmanager
def echo_upstream(nt: Platform, app_name: str) -> Iterator[int]:
    """Serve the middleware-protected echo app on a free port; yields the port."""

    async def echo(request: Request) -> JSONResponse:
        me: Identity = request.state.nevertrust
        token = request.headers["x-nevertrust-assertion"]
        return JSONResponse({"user": me.name, "kid": jwt.get_unverified_header(token)["kid"]})

    app = AssertionMiddleware(
        Starlette(routes=[Route("/", echo)]),
        jwks_url=f"http://127.0.0.1:{nt.port}/.well-known/jwks.json",
        jwks_host_header=f"auth.localhost:{nt.port}",
        issuer=nt.portal,
        audience=nt.app_url(app_name),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="echo-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "echo upstream did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def short_assertions(platform: Platform) -> Platform:
    """The server again, with assertions that live 10 s (the minimum): the gateway caches
    a session's assertion until half its life, so it switches keys within 5 s."""
    platform.stop()
    platform.env["NEVERTRUST_GATEWAY__ASSERTION_TTL_SECONDS"] = "10"
    platform.start()
    return platform


@pytest.mark.slow
def test_rotating_on_a_live_server_keeps_upstreams_verifying_and_switches_the_signer(
    short_assertions: Platform,
) -> None:
    nt = short_assertions
    nt.add_user("alice", PASSWORD, "admins")
    with echo_upstream(nt, "echo") as port:
        nt.cli("apps", "add", "echo", "--upstream", f"http://127.0.0.1:{port}")
        nt.cli("apps", "allow", "echo", "--group", "admins")
        b = nt.browser()
        form, _ = b.go("GET", nt.app_url("whoami") + "/")
        response, _ = nt.login(b, "alice", PASSWORD, form=form)
        assert (response.status_code, response.json()["user"]) == (200, "alice")
        response, _ = b.go("GET", nt.app_url("echo") + "/")
        assert response.status_code == 200, response.text
        old = response.json()["kid"]
        [listed] = json.loads(nt.cli("signing-keys", "list", "--json").stdout)
        assert (listed["kid"], listed["state"]) == (old, "active")

        rotated = nt.cli("signing-keys", "rotate", "--overlap", "30m")

        new = json.loads(nt.cli("signing-keys", "list", "--json").stdout)[-1]["kid"]
        assert new != old
        assert f"rotated: {new} is the active signing key; the running server" in rotated.stdout
        portal = b.request("GET", nt.portal + "/.well-known/jwks.json")
        assert [k["kid"] for k in portal.json()["keys"]] == [new, old]
        assert portal.headers["cache-control"] == "public, max-age=300"

        # Assertions already issued (old key) and new ones (new key) both verify; the
        # session's cached assertion is re-signed with the new key within seconds.
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while new not in seen:
            assert time.monotonic() < deadline, f"still signing with {seen} after 60 s"
            echo = b.request("GET", nt.app_url("echo") + "/")
            assert (echo.status_code, echo.json()["user"]) == (200, "alice"), echo.text
            seen.add(echo.json()["kid"])
            whoami = b.request("GET", nt.app_url("whoami") + "/")
            assert (whoami.status_code, whoami.json()["user"]) == (200, "alice"), whoami.text
            time.sleep(0.5)
        assert seen <= {old, new}

        # A new sign-in gets the new key from its first request.
        other = nt.browser()
        form, _ = other.go("GET", nt.app_url("echo") + "/")
        response, _ = nt.login(other, "alice", PASSWORD, form=form)
        assert (response.status_code, response.json()["kid"]) == (200, new)

        # The old key can now be retired; upstreams holding a fresh JWKS copy refuse it.
        nt.cli("signing-keys", "retire", old)
        portal = b.request("GET", nt.portal + "/.well-known/jwks.json")
        assert [k["kid"] for k in portal.json()["keys"]] == [new]
        assert b.request("GET", nt.app_url("echo") + "/").status_code == 200

    records = nt.audit_records(
        until=lambda rs: any(r["action"] == "gateway:signing-key:retired" for r in rs)
    )
    rotations = [r for r in records if r["action"] == "gateway:signing-key:rotated"]
    assert [(r["target"], r["actor"][:4]) for r in rotations] == [(f"signing-key:{new}", "cli:")]
