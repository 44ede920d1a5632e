"""Sign-in, access decisions and revocation, end to end against the real server."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import Platform

PASSWORD = "correct horse battery staple"


def _unsigned_assertion(**claims: object) -> str:
    """An ``alg: none`` JWT: what a client would send to impersonate someone."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return part({"alg": "none", "typ": "JWT"}) + "." + part(dict(claims)) + "."


@pytest.mark.slow
def test_member_of_allowed_group_reaches_whoami_through_the_sign_in_redirects(
    platform: Platform,
) -> None:
    platform.add_user("alice", PASSWORD, "admins")
    app = platform.app_url("whoami")
    app_host = urlsplit(app).netloc
    portal_host = urlsplit(platform.portal).netloc
    b = platform.browser()

    form, hops = b.go("GET", app + "/hello?x=1")

    assert [(h.response.status_code, urlsplit(h.url).netloc) for h in hops] == [
        (302, app_host),
        (303, portal_host),
        (200, portal_host),
    ]
    to_portal = urlsplit(hops[0].location or "")
    assert (to_portal.netloc, to_portal.path) == (portal_host, "/authorize")
    query = parse_qs(to_portal.query)
    assert query["rd"] == [app + "/hello?x=1"]
    assert query["state"] == [b.cookies(app_host)["_nt_state"]]
    assert urlsplit(hops[1].location or "").path == "/login"
    assert "nt_session" not in b.cookies(portal_host)

    response, hops = platform.login(b, "alice", PASSWORD, form=form)

    assert [(h.method, urlsplit(h.url).netloc, urlsplit(h.url).path) for h in hops] == [
        ("POST", portal_host, "/login"),
        ("GET", portal_host, "/authorize"),
        ("GET", app_host, "/.nevertrust/callback"),
        ("GET", app_host, "/hello"),
    ]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == "alice"
    assert body["groups"] == ["admins"]
    assert (body["request"]["path"], body["request"]["query"]) == ("/hello", "x=1")
    # Each host holds only its own cookie: the portal session never reaches the app host.
    assert "nt_session" in b.cookies(portal_host)
    assert "nt_app_session" in b.cookies(app_host)
    assert "nt_session" not in b.cookies(app_host)
    assert "_nt_state" not in b.cookies(app_host)  # spent by the callback

    # Our cookies never reach the upstream; the app's own cookies do.
    b.set_cookie(app_host, "theme", "dark")
    b.set_cookie(app_host, "_nt_state", "leftover-from-another-flow")
    response = b.request("GET", app + "/")
    assert response.status_code == 200
    assert response.json()["request"]["cookies_seen"] == ["theme"]

    # A client-supplied assertion is stripped: the upstream verifies ours and sees alice.
    forged = _unsigned_assertion(
        iss=platform.portal, aud=app, sub="1", name="mallory", groups=["admins"],
        iat=int(time.time()), exp=int(time.time()) + 300,
    )  # fmt: skip
    response = b.request(
        "GET", app + "/", headers={"x-nevertrust-assertion": forged, "x-nevertrust-user": "mallory"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"] == "alice"

    # Without a session, a forged assertion gets the visitor nowhere but the sign-in page.
    stranger = platform.browser()
    response = stranger.request("GET", app + "/", headers={"x-nevertrust-assertion": forged})
    assert response.status_code == 302
    assert response.headers["location"].startswith(platform.portal + "/authorize?")


@pytest.mark.slow
def test_denied_until_group_allowed_then_cut_off_at_once_by_revoke_and_disable(
    platform: Platform,
) -> None:
    platform.cli("groups", "add", "staff")
    platform.add_user("bob", PASSWORD, "staff")
    app = platform.app_url("whoami")
    b = platform.browser()

    form, _ = b.go("GET", app + "/")
    retry, _ = platform.login(b, "bob", "not the password at all", form=form)
    assert retry.status_code == 401
    assert "Wrong user name or password" in retry.text
    # The re-rendered form still carries rd and state, so the second try lands on the app.
    response, hops = platform.login(b, "bob", PASSWORD, form=retry)

    assert urlsplit(hops[-1].url).netloc == urlsplit(app).netloc
    assert response.status_code == 403
    assert "not-in-allowed-group" in response.text
    assert "bob" in response.text

    platform.cli("apps", "allow", "whoami", "--group", "staff")
    response = b.request("GET", app + "/")  # the very next request
    assert response.status_code == 200, response.text
    assert response.json()["groups"] == ["staff"]

    platform.cli("sessions", "revoke", "--user", "bob")
    response = b.request("GET", app + "/")
    assert response.status_code == 302
    assert response.headers["location"].startswith(platform.portal + "/authorize?")
    # The portal session went with it: following the redirect ends at the sign-in form.
    form, hops = b.go("GET", response.headers["location"])
    assert urlsplit(hops[-1].url).path == "/login"
    response, _ = platform.login(b, "bob", PASSWORD, form=form)
    assert response.status_code == 200
    assert response.json()["user"] == "bob"

    platform.cli("users", "disable", "bob")
    response = b.request("GET", app + "/")
    assert response.status_code == 302
    assert response.headers["location"].startswith(platform.portal + "/authorize?")
    form, hops = b.go("GET", response.headers["location"])
    assert urlsplit(hops[-1].url).path == "/login"
    response, _ = platform.login(b, "bob", PASSWORD, form=form)
    assert response.status_code == 401  # disabled users cannot sign in again

    def complete(records: list[dict[str, object]]) -> bool:
        seen = {(r["action"], r["reason"]) for r in records}
        return {
            ("pdp:decision:denied", "not-in-allowed-group"),
            ("identity:login:failed", "user-disabled"),
        } <= seen and any(a == "pdp:decision:allowed" for a, _ in seen)

    records = platform.audit_records(until=complete)
    by_action: dict[str, list[dict[str, object]]] = {}
    for r in records:
        by_action.setdefault(str(r["action"]), []).append(r)
    denied = by_action["pdp:decision:denied"]
    assert [(r["actor"], r["target"], r["reason"]) for r in denied] == [
        ("user:bob", "app:whoami", "not-in-allowed-group")
    ]
    assert {(r["actor"], r["target"]) for r in by_action["pdp:decision:allowed"]} == {
        ("user:bob", "app:whoami")
    }
    assert [r["actor"] for r in by_action["identity:login:succeeded"]] == ["user:bob", "user:bob"]
    assert [(r["actor"], r["reason"]) for r in by_action["identity:login:failed"]] == [
        ("user:bob", "bad-password"),
        ("user:bob", "user-disabled"),
    ]
    assert [r["target"] for r in by_action["identity:user:disabled"]] == ["user:bob"]
    # The human-readable tail shows the same vocabulary.
    tail = platform.cli("audit", "tail", "-n", "200").stdout
    for action in ("pdp:decision:allowed", "pdp:decision:denied", "identity:login:failed"):
        assert action in tail
