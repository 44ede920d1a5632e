"""Real nginx (auth_request) in front of a real upstream, asking the real NeverTrust.

nginx runs the configuration docs/forward-auth.md documents (tests/e2e/proxies/
nginx-site.conf); the world is described in tests/e2e/proxies/world.py: bob may read
``/public/*`` on ``app``, only admins (alice) may reach the rest, and browsers connect from
127.0.0.2 while only 127.0.0.1 (nginx) may ask NeverTrust forward-auth questions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import diagnose, free_port
from tests.e2e.proxies.harness import raw_request, render
from tests.e2e.proxies.world import (
    CLIENT,
    DOC_VALUES,
    FORGED,
    IDENTITY,
    PASSWORD,
    PATH_TRICKS,
    World,
    curl_sign_in,
    documented_block,
    one,
    sign_in_location,
    world,
)

pytestmark = [pytest.mark.nginx, pytest.mark.slow, pytest.mark.xdist_group("forward-auth-nginx")]


@pytest.fixture(scope="module")
def nginx_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("nginx"), "nginx") as w:
        yield w


@pytest.fixture
def w(nginx_world: World, request: pytest.FixtureRequest) -> World:
    diagnose(request.node, lambda: ("nginx and NeverTrust logs", nginx_world.logs()))
    return nginx_world


@pytest.fixture(scope="module")
def bob_cookie(nginx_world: World) -> str:
    """bob's session cookie for ``app``, from a real sign-in through nginx."""
    return nginx_world.app_cookie(nginx_world.signed_in("bob"), "app")


def test_signing_in_through_nginx_brings_the_user_back_and_the_upstream_sees_who_it_is(
    w: World,
) -> None:
    b = w.browser()
    target = "/public/hello?lang=en&x=%2F"

    first = b.request("GET", w.url("app", target))

    # nginx turns NeverTrust's 401 into a redirect to the portal, with the state cookie.
    assert first.status_code == 302, first.text
    query = sign_in_location(first.headers["location"], w, "app")
    assert query["rd"] == w.url("app", target)
    assert first.headers["set-cookie"].startswith(f"_nt_state={query['state']};")
    assert "HttpOnly" in first.headers["set-cookie"]
    form, _ = b.go("GET", first.headers["location"])
    response, hops = w.platform.login(b, "bob", PASSWORD, form=form)

    callback = next(h for h in hops if "/.nevertrust/callback" in h.url)
    assert callback.url.startswith(w.url("app", "/.nevertrust/callback?code="))
    assert callback.response.status_code == 302
    assert callback.response.headers["set-cookie"].startswith("nt_app_session=")
    assert "domain=" not in callback.response.headers["set-cookie"].lower()
    assert hops[-1].url == w.url("app", target)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["target"] == target
    headers = [tuple(h) for h in seen["headers"]]
    assert one(headers, "X-NeverTrust-User") == "bob"
    assert one(headers, "X-NeverTrust-Email") == "bob@example.com"
    assert one(headers, "X-NeverTrust-Groups") == "staff"
    assert one(headers, "X-Forwarded-For") == CLIENT
    claims = w.verify(one(headers, "X-NeverTrust-Assertion"))
    assert (claims["name"], claims["email"], claims["groups"]) == (
        "bob",
        "bob@example.com",
        ["staff"],
    )


def test_curl_signs_in_through_nginx_and_reaches_the_app_as_itself(
    w: World, tmp_path: Path
) -> None:
    body, last = curl_sign_in(w, tmp_path, "alice", "/admin/users?page=2")

    assert last == w.url("app", "/admin/users?page=2") + " 200", body
    headers = [tuple(h) for h in json.loads(body)["headers"]]
    assert one(headers, "X-NeverTrust-User") == "alice"
    assert one(headers, "X-NeverTrust-Groups") == "admins,staff"
    assert w.verify(one(headers, "X-NeverTrust-Assertion"))["name"] == "alice"


def test_a_denied_user_gets_403_with_the_reason(w: World, bob_cookie: str) -> None:
    before = len(w.upstream.seen)

    response = w.raw("/admin/users", cookie=bob_cookie)
    _, elsewhere = w.sign_in("dave", app="otherapp", target="/")

    assert response.status == 403
    assert response.header("X-NeverTrust-Reason") == "no-matching-rule"
    assert "no-matching-rule" in response.text
    assert elsewhere.status_code == 403
    assert elsewhere.headers["x-nevertrust-reason"] == "not-in-allowed-group"
    assert "not-in-allowed-group" in elsewhere.text
    assert w.reached(before) == []


@pytest.mark.parametrize("user", ["bob", "dave"])
def test_identity_headers_sent_by_the_client_never_reach_the_upstream(w: World, user: str) -> None:
    cookie = w.app_cookie(w.signed_in(user), "app")
    before = len(w.upstream.seen)

    signed_out = w.raw("/public/x", headers=FORGED)
    signed_in = w.raw("/public/x", cookie=cookie, headers=FORGED)

    assert signed_out.status == 302
    assert signed_in.status == 200, signed_in.text
    [seen] = w.reached(before)
    # dave is in no group: nginx sends no X-NeverTrust-Groups at all (an empty value
    # drops the header), and never the client's.
    groups = [["staff"]] if user == "bob" else [[]]
    assert [seen.values(n) for n in IDENTITY] == [[user], [f"{user}@example.com"], *groups]
    assert w.verify(one(seen.headers, "X-NeverTrust-Assertion"))["name"] == user
    assert one(seen.headers, "X-Forwarded-For") == CLIENT
    assert one(seen.headers, "X-Forwarded-Host") == "app.localhost"


@pytest.mark.parametrize("target", PATH_TRICKS)
def test_no_path_trick_takes_a_non_admin_to_admin(w: World, bob_cookie: str, target: str) -> None:
    before = len(w.upstream.seen)

    response = w.raw(target, cookie=bob_cookie)

    assert response.status == 403, response.text
    assert response.header("X-NeverTrust-Reason") in ("no-matching-rule", "bad-request")
    assert w.reached(before) == []


def test_the_same_tricks_work_for_whom_the_policy_allows(w: World, bob_cookie: str) -> None:
    """The path tests above are not refusing everything: allowed paths get through."""
    before = len(w.upstream.seen)

    allowed = [w.raw(t, cookie=bob_cookie) for t in ("/public/./x", "/public/a/../x", "//public/x")]

    assert [r.status for r in allowed] == [200, 200, 200]
    assert len(w.reached(before)) == 3


def test_two_host_headers_are_refused_before_anything_is_decided(w: World, bob_cookie: str) -> None:
    before = len(w.upstream.seen)

    response = w.raw("/public/x", cookie=bob_cookie, headers=f"Host: {w.host('otherapp')}")

    assert response.status == 400
    assert w.reached(before) == []


def test_a_client_x_forwarded_host_does_not_choose_the_app_decided_for(w: World) -> None:
    b = w.signed_in("bob", app="otherapp")
    otherapp_cookie = w.app_cookie(b, "otherapp")
    before = len(w.upstream.seen)
    claim = f"X-Forwarded-Host: {w.host('otherapp')}\r\nX-Original-URL: {w.url('otherapp')}/"

    at_home = w.raw("/admin", app="otherapp", cookie=otherapp_cookie)
    smuggled = w.raw("/admin", cookie=otherapp_cookie, headers=claim)

    assert at_home.status == 200  # the cookie is good, for otherapp
    assert smuggled.status == 302
    assert sign_in_location(smuggled.header("Location") or "", w, "app")
    assert [s.values("Host") for s in w.reached(before)] == [["otherapp.localhost"]]


def test_an_absolute_request_line_is_decided_for_the_host_nginx_routes_by(
    w: World, bob_cookie: str
) -> None:
    before = len(w.upstream.seen)

    # bob's cookie is for app; the request line names otherapp, where he has no session.
    response = w.raw(
        "",
        cookie=bob_cookie,
        request_line=f"GET {w.url('otherapp', '/public/x')} HTTP/1.1",
    )

    assert response.status == 302
    assert sign_in_location(response.header("Location") or "", w, "otherapp")
    assert w.reached(before) == []


def test_only_listed_peers_may_ask_forward_auth_questions(w: World, bob_cookie: str) -> None:
    question = (
        "GET /.nevertrust/authz/auth-request HTTP/1.1\r\nHost: nevertrust\r\n"
        f"X-Original-URL: {w.url('app', '/public/x')}\r\nX-Original-Method: GET\r\n"
        f"X-Forwarded-For: {CLIENT}\r\nCookie: nt_app_session={bob_cookie}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    proxy = raw_request(w.authz_port, question)
    ports = (w.authz_port, w.platform.port)
    strangers = [raw_request(port, question, source=CLIENT) for port in ports]

    assert (proxy.status, proxy.header("X-NeverTrust-User")) == (200, "bob"), proxy.text
    for answer in strangers:
        assert answer.status == 403, answer.text
        assert answer.header("X-NeverTrust-Reason") == "untrusted-client"
        assert answer.header("X-NeverTrust-User") is None


@pytest.mark.parametrize("host", ["app", "auth"])
@pytest.mark.parametrize("endpoint", ["auth-request", "forward-auth", "ext-authz/public/x"])
def test_clients_cannot_reach_the_forward_auth_endpoints_through_nginx(
    w: World, bob_cookie: str, host: str, endpoint: str
) -> None:
    response = w.raw(
        f"/.nevertrust/authz/{endpoint}",
        app=host,
        cookie=bob_cookie,
        headers=(
            f"X-Original-URL: {w.url('app', '/public/x')}\r\nX-Forwarded-Method: GET\r\n"
            f"X-Forwarded-Proto: http\r\nX-Forwarded-Host: {w.host('app')}\r\n"
            "X-Forwarded-Uri: /public/x"
        ),
    )

    assert response.status == 404
    assert response.header("X-NeverTrust-Assertion") is None


def test_an_unknown_host_and_a_forbidden_app_answer_alike_before_sign_in(w: World) -> None:
    answers = {app: w.raw("/", app=app) for app in ("app", "otherapp", "nosuch")}

    def shape(app: str) -> tuple[object, ...]:
        answer = answers[app]
        location = answer.header("Location") or ""
        state = sign_in_location(location, w, app)["state"]
        cookie = answer.header("Set-Cookie") or ""
        return (
            answer.status,
            location.replace(state, "STATE").replace(f"{app}.localhost", "APP.localhost"),
            cookie.replace(state, "STATE"),
            len(answer.body),
            sorted(k.lower() for k, _ in answer.headers if k.lower() != "date"),
        )

    assert shape("nosuch") == shape("otherapp") == shape("app")
    assert answers["nosuch"].status == 302


def test_revoking_a_users_sessions_sends_their_next_request_to_sign_in(w: World) -> None:
    carol = w.signed_in("carol")
    assert carol.request("GET", w.url("app", "/public/x")).status_code == 200

    w.platform.cli("sessions", "revoke", "--user", "carol")

    deadline = time.monotonic() + 10
    response = carol.request("GET", w.url("app", "/public/x"))
    while response.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        response = carol.request("GET", w.url("app", "/public/x"))
    assert response.status_code == 302
    assert sign_in_location(response.headers["location"], w, "app")


def test_nothing_gets_through_while_nevertrust_cannot_be_asked(
    w: World, bob_cookie: str, tmp_path: Path
) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    before = len(w.upstream.seen)
    request = (
        f"GET /public/x HTTP/1.1\r\nHost: {w.host('app')}\r\n"
        f"Cookie: nt_app_session={bob_cookie}\r\nConnection: close\r\n\r\n"
    ).encode()

    with w.another_proxy(tmp_path / "orphan", NEVERTRUST_AUTHZ=nobody) as orphan:
        response = raw_request(orphan.port, request, source=CLIENT)

    assert response.status == 500
    assert w.reached(before) == []


def test_the_documented_nginx_configuration_is_the_tested_one() -> None:
    assert documented_block("nginx-site.conf") == render("nginx-site.conf", DOC_VALUES)
