"""Attacks a browser or a network neighbour could try, against the real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.browser import Browser, Hop, hidden_fields
from tests.e2e.conftest import Platform

PASSWORD = "correct horse battery staple"


def _signed_in(platform: Platform, user: str = "alice") -> Browser:
    platform.add_user(user, PASSWORD, "admins")
    b = platform.browser()
    response, _ = platform.login(b, user, PASSWORD)
    assert response.status_code == 200
    return b


def _bad_targets(port: int) -> list[str]:
    return [
        "http://evil.com/",
        "//evil.com",
        "//evil.com/%2F..",
        "/\\evil.com",
        "https://evil.com/",
        f"http://whoami.localhost:{port}@evil.com/",
        f"http://evil.com\\@whoami.localhost:{port}/",
        f"http://whoami.localhost:{port}.evil.com/",
        f"http://whoami.localhost.evil.com:{port}/",
        f"http://nosuch.localhost:{port}/",
        f"http://a.whoami.localhost:{port}/",
        f"http://whoami.localhost:{port + 1}/",
        f"https://whoami.localhost:{port}/",
        f"http://whoami.localhost:{port}\r\nSet-Cookie: x=1",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "",
    ]


def _assert_stayed_home(platform: Platform, response: httpx.Response, hops: list[Hop]) -> None:
    """Every hop stayed on the portal or a registered app, and it ended at the portal home."""
    allowed = {f"auth.localhost:{platform.port}", f"whoami.localhost:{platform.port}"}
    for hop in hops:
        assert urlsplit(hop.url).netloc in allowed, hop.url
        assert hop.location is None or urlsplit(hop.location).netloc in allowed, hop.location
    assert hops[-1].url == platform.portal + "/"
    assert response.status_code == 200


@pytest.mark.slow
def test_sign_in_never_redirects_outside_registered_apps(platform: Platform) -> None:
    signed_in = _signed_in(platform)
    for rd in _bad_targets(platform.port):
        query = urlencode({"rd": rd, "state": "s" * 43})
        # Already signed in: /authorize and /login answer at once.
        for path in ("/authorize", "/login"):
            response, hops = signed_in.go("GET", f"{platform.portal}{path}?{query}")
            _assert_stayed_home(platform, response, hops)
        # Not signed in: through the form, with rd and state carried in hidden fields.
        b = platform.browser()
        form, hops = b.go("GET", f"{platform.portal}/authorize?{query}")
        assert urlsplit(hops[-1].url).path == "/login"
        response, hops = platform.login(b, "alice", PASSWORD, form=form)
        _assert_stayed_home(platform, response, hops)
        # And posting the login form directly with the bad target.
        b = platform.browser()
        form, _ = b.go("GET", platform.portal + "/login")
        response, hops = b.go(
            "POST",
            platform.portal + "/login",
            data={
                **hidden_fields(form.text),
                "rd": rd,
                "state": "s" * 43,
                "username": "alice",
                "password": PASSWORD,
            },
        )
        _assert_stayed_home(platform, response, hops)
    # The good target still works: only registered apps on our origin pass.
    good = platform.app_url("whoami") + "/ok"
    response, hops = signed_in.go(
        "GET", f"{platform.portal}/authorize?{urlencode({'rd': good, 'state': 's' * 43})}"
    )
    assert urlsplit(hops[1].url).path == "/.nevertrust/callback"
    # A state the app host never set is refused there: the code is bound to the browser.
    assert response.status_code == 400


@pytest.mark.slow
def test_login_without_a_valid_csrf_token_is_refused_and_opens_no_session(
    platform: Platform,
) -> None:
    platform.add_user("alice", PASSWORD)
    portal_host = f"auth.localhost:{platform.port}"
    other = platform.browser()
    other_form, _ = other.go("GET", platform.portal + "/login")
    token_of_other_browser = hidden_fields(other_form.text)["csrf_token"]

    b = platform.browser()
    form, _ = b.go("GET", platform.portal + "/login")
    assert "nt_csrf" in b.cookies(portal_host)
    fields = {**hidden_fields(form.text), "username": "alice", "password": PASSWORD}
    for token in (None, "", "x" * 43, token_of_other_browser):
        data = {k: v for k, v in fields.items() if k != "csrf_token"}
        if token is not None:
            data["csrf_token"] = token
        response = b.request("POST", platform.portal + "/login", data=data)
        assert response.status_code == 403, token
        assert not any(c.startswith("nt_session=") for c in response.headers.get_list("set-cookie"))
        assert "nt_session" not in b.cookies(portal_host)

    # A valid token without its cookie (a cross-site form post from a fresh browser) fails too.
    fresh = platform.browser()
    response = fresh.request("POST", platform.portal + "/login", data=fields)
    assert response.status_code == 403
    assert "nt_session" not in fresh.cookies(portal_host)

    # The same form with the right token signs in.
    response = b.request("POST", platform.portal + "/login", data=fields)
    assert response.status_code == 303
    assert "nt_session" in b.cookies(portal_host)


@pytest.mark.slow
def test_sign_in_issues_a_new_session_id_so_a_planted_one_is_useless(platform: Platform) -> None:
    platform.add_user("alice", PASSWORD)
    portal_host = f"auth.localhost:{platform.port}"
    planted = "fixated-" + "a" * 35
    victim = platform.browser()
    victim.set_cookie(portal_host, "nt_session", planted)

    response, _ = platform.login(victim, "alice", PASSWORD)

    assert response.status_code == 200
    issued = victim.cookies(portal_host)["nt_session"]
    assert issued != planted
    attacker = platform.browser()
    attacker.set_cookie(portal_host, "nt_session", planted)
    response, hops = attacker.go("GET", platform.portal + "/")
    assert urlsplit(hops[-1].url).path == "/login"
    assert "Sign in" in response.text


@pytest.mark.slow
def test_logout_ends_the_portal_session_and_every_app_session_opened_from_it(
    platform: Platform,
) -> None:
    platform.add_user("alice", PASSWORD, "admins")
    app = platform.app_url("whoami")
    app_host, portal_host = urlsplit(app).netloc, urlsplit(platform.portal).netloc
    b = platform.browser()
    form, _ = b.go("GET", app + "/")
    response, _ = platform.login(b, "alice", PASSWORD, form=form)
    assert response.status_code == 200
    portal_token = b.cookies(portal_host)["nt_session"]
    app_token = b.cookies(app_host)["nt_app_session"]

    page, _ = b.go("GET", platform.portal + "/logout")
    csrf = hidden_fields(page.text)["csrf_token"]
    # Without the token nothing happens (a cross-site page cannot sign you out either).
    assert b.request("POST", platform.portal + "/logout", data={}).status_code == 403
    assert b.request("GET", app + "/").status_code == 200

    response = b.request("POST", platform.portal + "/logout", data={"csrf_token": csrf})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert "nt_session" not in b.cookies(portal_host)
    response = b.request("GET", app + "/")  # the app cookie is still in the jar, but dead
    assert response.status_code == 302
    assert response.headers["location"].startswith(platform.portal + "/authorize?")
    # Replaying the old cookies from elsewhere gets nowhere either.
    thief = platform.browser()
    thief.set_cookie(portal_host, "nt_session", portal_token)
    thief.set_cookie(app_host, "nt_app_session", app_token)
    _, hops = thief.go("GET", platform.portal + "/")
    assert urlsplit(hops[-1].url).path == "/login"
    assert thief.request("GET", app + "/").status_code == 302


@pytest.mark.slow
def test_every_cookie_is_host_only_httponly_and_samesite_lax(platform: Platform) -> None:
    platform.add_user("alice", PASSWORD, "admins")
    app = platform.app_url("whoami")
    b = platform.browser()
    form, _ = b.go("GET", app + "/")
    platform.login(b, "alice", "wrong password, surely", form=form)
    response, _ = platform.login(b, "alice", PASSWORD, form=form)
    assert response.status_code == 200
    page, _ = b.go("GET", platform.portal + "/logout")
    b.go("POST", platform.portal + "/logout", data=hidden_fields(page.text))

    set_cookies = [
        (hop.url, header)
        for hop in b.history
        for header in hop.response.headers.get_list("set-cookie")
    ]
    names = {header.split("=", 1)[0] for _, header in set_cookies}
    assert {"nt_csrf", "nt_session", "_nt_state", "nt_app_session"} <= names
    for url, header in set_cookies:
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        assert "httponly" in attributes, (url, header)
        assert "samesite=lax" in attributes, (url, header)
        assert not any(a.startswith("domain") for a in attributes), (url, header)
        assert "path=/" in attributes, (url, header)


@pytest.mark.slow
def test_before_sign_in_unknown_and_forbidden_app_hosts_look_the_same(platform: Platform) -> None:
    platform.cli("apps", "add", "secret", "--upstream", f"http://127.0.0.1:{platform.demo_port}")
    shapes = {}
    for name in ("nosuch", "secret", "whoami"):
        b = platform.browser()
        response = b.request("GET", platform.app_url(name) + "/x?y=1")
        location = response.headers.get("location", "")
        shape = re.sub(r"state=[\w-]{43}$", "state=STATE", location).replace(
            quote(platform.app_url(name), safe=""), "APP"
        )
        shapes[name] = (
            response.status_code,
            shape,
            sorted(k for k in response.headers if k != "date"),
            [c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")],
            len(response.content),
        )
    assert shapes["nosuch"] == shapes["secret"] == shapes["whoami"]
    assert shapes["nosuch"][0] == 302
    assert shapes["nosuch"][1] == (f"{platform.portal}/authorize?rd=APP%2Fx%3Fy%3D1&state=STATE")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forge(
    header: dict[str, object], claims: dict[str, object], sign: Callable[[bytes], bytes]
) -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(sign(head.encode()))


@pytest.mark.slow
def test_upstream_rejects_forged_assertions_sent_to_it_directly(platform: Platform) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        jwks = client.get(
            f"http://127.0.0.1:{platform.port}/.well-known/jwks.json",
            headers={"host": f"auth.localhost:{platform.port}"},
        ).json()
        (jwk,) = jwks["keys"]
        kid = jwk["kid"]
        public_pem = jwt.PyJWK(jwk).key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": platform.portal,
            "aud": platform.app_url("whoami"),
            "sub": "1",
            "name": "mallory",
            "groups": ["admins"],
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        stranger_key = ec.generate_private_key(ec.SECP256R1())
        forgeries = {
            "alg none": _forge({"alg": "none", "typ": "JWT", "kid": kid}, claims, lambda _: b""),
            "HS256 keyed with the public key": _forge(
                {"alg": "HS256", "typ": "JWT", "kid": kid},
                claims,
                lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
            ),
            "expired ES256 from a key not in the JWKS": jwt.encode(
                {**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 3000},
                stranger_key,
                algorithm="ES256",
                headers={"kid": kid},
            ),
            "fresh ES256 from a key not in the JWKS": jwt.encode(
                claims, stranger_key, algorithm="ES256", headers={"kid": "not-" + kid}
            ),
            "garbage": "not.a.jwt",
        }
        upstream = f"http://127.0.0.1:{platform.demo_port}/"
        response = client.get(upstream)
        assert response.status_code == 401
        assert response.json()["error"] == "missing-assertion"
        for what, token in forgeries.items():
            response = client.get(upstream, headers={"x-nevertrust-assertion": token})
            assert response.status_code == 401, (what, response.text)
            assert response.json()["error"] == "invalid-assertion", what
            assert "mallory" not in response.text
