"""Traefik's ForwardAuth and Envoy's ext_authz, as their own code calls a forward-auth
server, against the real NeverTrust (neither proxy is packaged in Debian).

Each request below is shaped exactly as the proxy builds it, from its source:

* Traefik (pkg/middlewares/auth/forward.go, ``trustForwardHeader: false``): a GET to the
  configured address carrying every header of the client's request except hop-by-hop
  ones, with ``X-Forwarded-For`` SET to the client's address and ``X-Forwarded-Method``,
  ``-Proto``, ``-Host`` (the request's Host) and ``-Uri`` (its request URI, with the query)
  set over anything the client sent. A 2xx lets the request through with the
  ``authResponseHeaders`` copied over the client's; any other answer goes back to the
  client with its headers (Location, Set-Cookie) and body.
* Envoy (source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc, HTTP
  service): the client's method; ``path_prefix`` followed by the client's ``:path`` (with
  the query); the client's ``:authority`` as Host; ``Content-Length: 0``; ``Authorization``
  and the headers listed in ``allowed_headers`` (Cookie, and X-Forwarded-Proto and
  X-Forwarded-For as the connection manager set them with ``use_remote_address``); plus
  ``x-envoy-expected-rq-timeout-ms`` from its router. Only 200 lets the request through
  (``allowed_upstream_headers`` override the client's); a 5xx becomes Envoy's own 403.

Both are sent to NeverTrust's main port and to its forward-auth listener.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from nevertrust.gateway import verify_assertion
from tests.e2e.conftest import Platform, diagnose, free_port, new_platform, running
from tests.e2e.proxies.harness import EchoUpstream
from tests.e2e.proxies.world import PASSWORD, populate

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("forward-auth-conventions")]

Door = Literal["main", "listener"]
CLIENT = "198.51.100.7"  # the browser, as the proxy saw it
ENVOY_PREFIX = "/.nevertrust/authz/ext-authz"


class Conventions:
    def __init__(self, platform: Platform, listener_port: int) -> None:
        self.platform = platform
        self.listener_port = listener_port
        self.cookies: dict[str, str] = {}

    def host(self, app: str = "app") -> str:
        return f"{app}.localhost:{self.platform.port}"

    def cookie(self, user: str) -> str:
        """``user``'s session cookie for ``app``, from a sign-in through the portal."""
        if user not in self.cookies:
            b = self.platform.browser()
            form, _ = b.go("GET", self.platform.app_url("app") + "/public/")
            _, hops = self.platform.login(b, user, PASSWORD, form=form)
            assert any("/.nevertrust/callback" in h.url for h in hops), [h.url for h in hops]
            self.cookies[user] = b.cookies(self.host())["nt_app_session"]
        return self.cookies[user]

    def verify(self, response: httpx.Response) -> dict[str, Any]:
        """The assertion's claims, checked against the JWKS the portal publishes."""
        with httpx.Client(trust_env=False) as client:
            jwks = client.get(
                f"http://127.0.0.1:{self.platform.port}/.well-known/jwks.json",
                headers={"host": f"auth.localhost:{self.platform.port}"},
            ).json()
        return verify_assertion(
            response.headers["x-nevertrust-assertion"],
            jwks=jwks,
            expected_issuer=self.platform.portal,
            expected_audience=self.platform.app_url("app"),
            now=datetime.now(UTC),
        )

    def ask(self, door: Door, method: str, target: str, headers: dict[str, str]) -> httpx.Response:
        port = self.platform.port if door == "main" else self.listener_port
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            return client.request(method, target, headers=headers)

    def traefik(
        self,
        door: Door,
        method: str,
        uri: str,
        *,
        user: str | None = None,
        client_headers: dict[str, str] | None = None,
        forwarded_for: str = CLIENT,
    ) -> httpx.Response:
        """What Traefik's ForwardAuth sends for the client's ``method uri`` on app."""
        headers = {
            "user-agent": "Mozilla/5.0",
            "accept": "text/html",
            **(client_headers or {}),
        }
        if user is not None:
            headers["cookie"] = f"nt_app_session={self.cookie(user)}; theme=dark"
        headers.update(
            {
                "x-forwarded-for": forwarded_for,
                "x-forwarded-method": method,
                "x-forwarded-proto": "http",
                "x-forwarded-host": self.host(),
                "x-forwarded-uri": uri,
            }
        )
        return self.ask(door, "GET", "/.nevertrust/authz/forward-auth", headers)

    def envoy(
        self,
        door: Door,
        method: str,
        path: str,
        *,
        user: str | None = None,
        app: str = "app",
        forwarded_proto: bool = True,
    ) -> httpx.Response:
        """What Envoy's ext_authz HTTP filter sends for the client's ``method path``."""
        headers = {
            "host": self.host(app),
            "content-length": "0",
            "x-envoy-expected-rq-timeout-ms": "250",
            "x-forwarded-for": f"203.0.113.9, {CLIENT}",
        }
        if forwarded_proto:
            headers["x-forwarded-proto"] = "http"
        if user is not None:
            headers["cookie"] = f"nt_app_session={self.cookie(user)}"
        return self.ask(door, method, ENVOY_PREFIX + path, headers)


@pytest.fixture(scope="module")
def conventions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conventions]:
    directory = tmp_path_factory.mktemp("conventions")
    listener_port = free_port()
    upstream = EchoUpstream().start()
    nt = new_platform(
        directory,
        env={
            "NEVERTRUST_GATEWAY__FORWARD_AUTH_PORT": str(listener_port),
            "NEVERTRUST_GATEWAY__FORWARD_AUTH_CLIENTS": json.dumps(["127.0.0.1/32"]),
        },
    )
    try:
        with running(nt):
            populate(nt, directory, upstream.url)
            yield Conventions(nt, listener_port)
    finally:
        upstream.stop()


@pytest.fixture
def c(conventions: Conventions, request: pytest.FixtureRequest) -> Conventions:
    diagnose(request.node, lambda: ("NeverTrust stderr", conventions.platform.stderr[-20_000:]))
    return conventions


def identity(response: httpx.Response) -> list[str]:
    return [
        response.headers.get(f"x-nevertrust-{name}", "<absent>")
        for name in ("user", "email", "groups")
    ]


def assert_sign_in(response: httpx.Response, c: Conventions, rd: str, app: str = "app") -> None:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == c.platform.portal + "/authorize"
    query = dict(parse_qsl(parts.query))
    assert query["rd"] == c.platform.app_url(app) + rd, query
    assert response.headers["set-cookie"].startswith(f"_nt_state={query['state']};")


DOORS: list[Door] = ["main", "listener"]


# Traefik


@pytest.mark.parametrize("door", DOORS)
def test_traefik_allowed_request_gets_200_with_headers_for_auth_response_headers(
    c: Conventions, door: Door
) -> None:
    response = c.traefik(door, "GET", "/public/report?year=2026", user="bob")

    assert response.status_code == 200, response.text
    assert identity(response) == ["bob", "bob@example.com", "staff"]
    assert c.verify(response)["name"] == "bob"


@pytest.mark.parametrize("door", DOORS)
def test_traefik_decides_the_clients_method_not_its_own_get(c: Conventions, door: Door) -> None:
    post = c.traefik(door, "POST", "/admin/users", user="bob")
    # A rule on methods would see POST; here bob may not reach /admin with any method.
    assert post.status_code == 403
    assert post.headers["x-nevertrust-reason"] == "no-matching-rule"


@pytest.mark.parametrize("door", DOORS)
def test_traefik_signed_out_request_gets_a_redirect_it_hands_to_the_browser(
    c: Conventions, door: Door
) -> None:
    response = c.traefik(door, "GET", "/public/report?year=2026")

    assert_sign_in(response, c, "/public/report?year=2026")


@pytest.mark.parametrize("door", DOORS)
def test_traefik_denied_request_gets_the_403_page_with_the_reason(
    c: Conventions, door: Door
) -> None:
    response = c.traefik(door, "GET", "/admin", user="bob")

    assert response.status_code == 403
    assert response.headers["x-nevertrust-reason"] == "no-matching-rule"
    assert "no-matching-rule" in response.text
    assert "x-nevertrust-user" not in response.headers


@pytest.mark.parametrize("door", DOORS)
def test_traefik_copies_client_headers_but_only_its_own_x_forwarded_ones_decide(
    c: Conventions, door: Door
) -> None:
    """Traefik passes every client header on to the forward-auth server; nginx's
    X-Original-URL among them must not describe the request."""
    smuggle = {
        "x-original-url": f"http://{c.host()}/public/x",
        "x-original-method": "GET",
        "x-nevertrust-user": "admin",
    }

    response = c.traefik(door, "GET", "/admin", user="bob", client_headers=smuggle)

    assert response.status_code == 403
    assert response.headers["x-nevertrust-reason"] == "no-matching-rule"


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("uri", ["/public/../admin", "/public/%2e%2e/admin", "//admin"])
def test_traefik_path_tricks_are_decided_on_the_normalised_path(
    c: Conventions, door: Door, uri: str
) -> None:
    response = c.traefik(door, "GET", uri, user="bob")

    assert response.status_code == 403, response.text


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("address", ["a", "", "10.0.0.1, 999.1.1.1"])
def test_traefik_question_without_a_readable_client_address_is_refused(
    c: Conventions, door: Door, address: str
) -> None:
    """CVE-2024-47070: an unparsable X-Forwarded-For must not make address conditions
    skip themselves; NeverTrust refuses to decide instead."""
    response = c.traefik(door, "GET", "/public/x", user="bob", forwarded_for=address)

    assert response.status_code == 400
    assert response.headers["x-nevertrust-reason"] == "bad-request"
    assert "x-nevertrust-user" not in response.headers


@pytest.mark.parametrize("host", ["auth", "app"])
def test_the_path_traefik_hides_forward_auth_behind_is_not_found(c: Conventions, host: str) -> None:
    """The documented Traefik routers rewrite /.nevertrust/authz/* to /.nevertrust/hidden
    on the portal and app hosts and send it to NeverTrust's main port."""
    with httpx.Client(trust_env=False) as client:
        response = client.get(
            f"http://127.0.0.1:{c.platform.port}/.nevertrust/hidden",
            headers={
                "host": f"{host}.localhost:{c.platform.port}",
                "cookie": f"nt_app_session={c.cookie('bob')}",
            },
        )

    assert response.status_code == 404
    assert "x-nevertrust-assertion" not in response.headers


# Envoy


@pytest.mark.parametrize("door", DOORS)
def test_envoy_allowed_request_gets_200_with_headers_for_allowed_upstream_headers(
    c: Conventions, door: Door
) -> None:
    response = c.envoy(door, "GET", "/public/report?year=2026", user="bob")

    assert response.status_code == 200, response.text
    assert identity(response) == ["bob", "bob@example.com", "staff"]
    assert c.verify(response)["name"] == "bob"


@pytest.mark.parametrize("door", DOORS)
def test_envoy_check_keeps_the_clients_method(c: Conventions, door: Door) -> None:
    post = c.envoy(door, "POST", "/public/form", user="bob")
    admin = c.envoy(door, "DELETE", "/admin/users/7", user="bob")

    assert post.status_code == 200, post.text
    assert admin.status_code == 403
    assert admin.headers["x-nevertrust-reason"] == "no-matching-rule"


@pytest.mark.parametrize("door", DOORS)
def test_envoy_signed_out_request_is_sent_to_sign_in_and_back_to_the_same_url(
    c: Conventions, door: Door
) -> None:
    response = c.envoy(door, "GET", "/public/report?year=2026")

    assert_sign_in(response, c, "/public/report?year=2026")


@pytest.mark.parametrize("door", DOORS)
def test_envoy_denied_request_gets_403_with_the_reason(c: Conventions, door: Door) -> None:
    response = c.envoy(door, "GET", "/admin", user="bob")

    assert response.status_code == 403
    assert response.headers["x-nevertrust-reason"] == "no-matching-rule"


@pytest.mark.parametrize("door", DOORS)
def test_envoy_without_x_forwarded_proto_in_allowed_headers_is_told_so(
    c: Conventions, door: Door
) -> None:
    response = c.envoy(door, "GET", "/public/x", user="bob", forwarded_proto=False)

    assert response.status_code == 400
    assert response.headers["x-nevertrust-reason"] == "bad-request"
    assert "allowed_headers" in response.text


@pytest.mark.parametrize("door", DOORS)
def test_envoy_unknown_host_and_forbidden_app_answer_alike_before_sign_in(
    c: Conventions, door: Door
) -> None:
    unknown = c.envoy(door, "GET", "/", app="nosuch")
    forbidden = c.envoy(door, "GET", "/", app="otherapp")

    assert_sign_in(unknown, c, "/", app="nosuch")
    assert_sign_in(forbidden, c, "/", app="otherapp")
    assert len(unknown.content) == len(forbidden.content)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("path", ["/public/../admin", "/public/%2e%2e/admin", "//admin"])
def test_envoy_path_tricks_are_decided_on_the_normalised_path(
    c: Conventions, door: Door, path: str
) -> None:
    response = c.envoy(door, "GET", path, user="bob")

    assert response.status_code == 403, response.text
