"""The "My account" page against the real server: a person enrols an authenticator app,
makes recovery codes and signs sessions out; sign-in then asks for what they set up.

Codes come from the independent ``oathtool`` client.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from nevertrust.crypto import hash_token
from tests.e2e.browser import Browser, hidden_fields
from tests.e2e.chromium import chromium_context
from tests.e2e.conftest import Platform

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("oathtool") is None, reason="needs oathtool"),
]

PASSWORD = "correct horse battery staple"
_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_CODES = re.compile(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>")


def oathtool(secret: str, *, at: float | None = None) -> str:
    when = [] if at is None else ["-N", f"@{int(at)}"]
    return subprocess.run(
        ["oathtool", "--totp", "-b", *when, secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()


def signed_in(platform: Platform, user: str) -> Browser:
    b = platform.browser()
    page, hops = platform.login(b, user, PASSWORD)
    assert hops[-1].url == platform.portal + "/", page.text
    return b


def post(platform: Platform, b: Browser, path: str, **fields: str) -> tuple[httpx.Response, str]:
    """Submit one of the account page's forms; returns the answer and where it ended."""
    page, _ = b.go("GET", platform.portal + "/account")
    token = hidden_fields(page.text)["csrf_token"]
    response, hops = b.go("POST", platform.portal + path, data={"csrf_token": token, **fields})
    return response, hops[-1].url


def second_step(platform: Platform, user: str, code: str) -> tuple[Browser, httpx.Response]:
    """Password, then ``code`` on /login/mfa, in a fresh browser."""
    b = platform.browser()
    page, hops = platform.login(b, user, PASSWORD)
    assert hops[-1].url.startswith(platform.portal + "/login/mfa"), hops[-1].url
    fields = hidden_fields(page.text)
    answer, _ = b.go("POST", platform.portal + "/login/mfa", data={**fields, "otp": code})
    return b, answer


def test_enrol_on_the_account_page_then_sign_in_with_password_and_code(
    platform: Platform,
) -> None:
    platform.add_user("carol", PASSWORD)
    b = signed_in(platform, "carol")
    home, _ = b.go("GET", platform.portal + "/")
    assert 'href="/account"' in home.text

    page, _ = b.go("GET", platform.portal + "/account")
    assert page.status_code == 200
    assert "Set up an authenticator app" in page.text
    started, url = post(platform, b, "/account/totp/enroll")
    assert url == platform.portal + "/account?done=totp-started"
    assert "<svg" in started.text and 'name="otp"' in started.text
    found = _SECRET.search(started.text)
    assert found, started.text
    secret = found.group(1).replace(" ", "")

    wrong, _ = post(platform, b, "/account/totp/confirm", otp="000000")
    assert wrong.status_code == 400
    assert "does not match" in unescape(wrong.text)
    confirmed, url = post(platform, b, "/account/totp/confirm", otp=oathtool(secret))
    assert url == platform.portal + "/account?done=totp-enrolled"
    assert "Remove authenticator app" in confirmed.text
    assert secret not in confirmed.text  # shown only while enrolling

    # Signing in now takes the password and a code. The confirming code is spent, so
    # the app's next code (one step ahead, inside the drift window) is the one that works.
    _, replay = second_step(platform, "carol", oathtool(secret))
    assert replay.status_code == 401
    b2, answer = second_step(platform, "carol", oathtool(secret, at=time.time() + 30))
    assert answer.status_code == 200, answer.text
    assert str(answer.url).endswith("/")
    assert "nt_session" in b2.cookies(f"auth.localhost:{platform.port}")

    # Removing it (a CSRF-checked form) makes the password enough again.
    forged, _ = b.go("POST", platform.portal + "/account/totp/remove", data={})
    assert forged.status_code == 403
    assert "Remove authenticator app" in b.go("GET", platform.portal + "/account")[0].text
    # This browser signed in with the password alone (before enrolling): a stolen cookie
    # must not be enough to remove a factor, so the portal asks for a fresh code first.
    asked, url = post(platform, b, "/account/totp/remove")
    assert url.startswith(platform.portal + "/stepup?methods=mfa"), url
    assert 'name="otp"' in asked.text and hidden_fields(asked.text)["next"] == "/account"
    # The browser that signed in with password and code a moment ago may remove it.
    _, url = post(platform, b2, "/account/totp/remove")
    assert url == platform.portal + "/account?done=totp-removed"
    signed_in(platform, "carol")

    status = platform.cli("mfa", "status", "carol", "--json").stdout
    assert '"totp": false' in status


def test_recovery_codes_are_shown_once_and_each_signs_in_once(platform: Platform) -> None:
    platform.add_user("carol", PASSWORD)
    secret = re.search(r"secret=([A-Z2-7]+)", platform.cli("mfa", "totp", "enroll", "carol").stdout)
    assert secret
    b, answer = second_step(platform, "carol", oathtool(secret.group(1)))
    assert answer.status_code == 200

    shown, _ = post(platform, b, "/account/recovery-codes")
    codes = _CODES.findall(shown.text)
    assert len(codes) == 10
    again, _ = b.go("GET", platform.portal + "/account")
    assert "<strong>10</strong> unused codes left" in again.text
    assert not any(code in again.text for code in codes)

    other, answer = second_step(platform, "carol", codes[4].upper())
    assert answer.status_code == 200 and str(answer.url).endswith("/")
    _, reused = second_step(platform, "carol", codes[4])
    assert reused.status_code == 401
    left, _ = other.go("GET", platform.portal + "/account")
    assert "<strong>9</strong> unused codes left" in left.text


def test_sessions_are_listed_and_signed_out_one_at_a_time(platform: Platform) -> None:
    platform.add_user("carol", PASSWORD)
    platform.add_user("dave", PASSWORD)
    host = f"auth.localhost:{platform.port}"
    laptop, phone = signed_in(platform, "carol"), signed_in(platform, "carol")
    phone_prefix = hash_token(phone.cookies(host)["nt_session"])[:16]
    laptop_prefix = hash_token(laptop.cookies(host)["nt_session"])[:16]

    page, _ = laptop.go("GET", platform.portal + "/account")
    assert page.text.count("Sign out this session") == 2
    assert page.text.count("this browser") == 1
    assert f'value="{phone_prefix}"' in page.text

    # Someone else cannot end carol's sessions, even knowing the prefix.
    _, url = post(
        platform, signed_in(platform, "dave"), "/account/sessions/revoke", session=phone_prefix
    )
    assert url.endswith("done=session-gone")
    assert phone.go("GET", platform.portal + "/")[1][-1].url == platform.portal + "/"

    _, url = post(platform, laptop, "/account/sessions/revoke", session=phone_prefix)
    assert url.endswith("done=session-revoked")
    assert phone.go("GET", platform.portal + "/")[1][-1].url.startswith(platform.portal + "/login")
    page, _ = laptop.go("GET", platform.portal + "/account")
    assert page.text.count("Sign out this session") == 1

    _, url = post(platform, laptop, "/account/sessions/revoke", session=laptop_prefix)
    assert url.startswith(platform.portal + "/login")
    assert laptop.go("GET", platform.portal + "/account")[1][-1].url.startswith(
        platform.portal + "/login"
    )


@pytest.fixture
def chromium_page(platform: Platform) -> Iterator[object]:
    with chromium_context() as context:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab


@pytest.mark.browser
def test_chromium_shows_the_qr_code_under_the_csp_and_confirms_a_code(
    platform: Platform, chromium_page: object
) -> None:
    from playwright.sync_api import Page, expect

    page = chromium_page
    assert isinstance(page, Page)
    platform.add_user("carol", PASSWORD)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(platform.portal + "/login")
    page.fill("#username", "carol")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(platform.portal + "/")
    page.click("text=My account")
    expect(page.locator("h1")).to_have_text("My account")
    page.click("text=Set up an authenticator app")
    qr = page.locator(".qr-box svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 100 and box["height"] >= 100
    secret = page.locator("code.secret").inner_text().replace(" ", "")

    page.fill("#otp", oathtool(secret))
    page.click("text=Confirm")

    expect(page.locator(".flash")).to_contain_text("Authenticator app set up")
    assert not [m for m in console if "Content Security Policy" in m], console


def test_a_group_that_requires_mfa_sends_members_here_until_they_enrol(
    platform: Platform,
) -> None:
    platform.cli("groups", "add", "finance")
    platform.add_user("erin", PASSWORD, "finance")
    platform.cli("apps", "allow", "whoami", "--group", "finance")
    platform.cli("groups", "require-mfa", "finance")
    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("whoami") + "/")

    page, hops = platform.login(b, "erin", PASSWORD, form=form)

    assert hops[-1].url == platform.portal + "/account?enrol=required"
    assert "requires a second factor" in page.text
    post(platform, b, "/account/totp/enroll")
    found = _SECRET.search(b.go("GET", platform.portal + "/account")[0].text)
    assert found
    done, _ = post(
        platform, b, "/account/totp/confirm", otp=oathtool(found.group(1).replace(" ", ""))
    )
    assert "requires a second factor" not in done.text
    app, hops = b.go("GET", platform.app_url("whoami") + "/")
    assert (app.status_code, hops[-1].url) == (200, platform.app_url("whoami") + "/")
