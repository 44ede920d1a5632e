"""Passkeys in a real Chromium with a virtual authenticator (Chrome DevTools Protocol).

The authenticator is Chromium's own CTAP2 implementation behind ``navigator.credentials``,
so this exercises ``static/webauthn.js``, the CSP, cookies, and the server's verification
together, the way a person with a laptop fingerprint reader would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.chromium import chromium_context
from tests.e2e.conftest import Platform

PASSWORD = "correct horse battery staple"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Tab:
    page: Any  # playwright Page
    cdp: Any  # CDPSession
    authenticator: str
    errors: list[str]  # script errors and failed requests; must be empty at the end

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})
        return list(found["credentials"])


# A computer's own authenticator (Touch ID, Windows Hello): the browser reports the
# credential's attachment as "platform", the only kind a device binding accepts.
PLATFORM_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@contextmanager
def platform_tab() -> Iterator[Tab]:
    """One Chromium page with a platform authenticator; records script errors and every
    failed response (``Tab.errors``) so the test can say which failures it expected."""
    with chromium_context() as context:
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: (
                errors.append(msg.text)
                if msg.type == "error" and "Failed to load resource" not in msg.text
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": PLATFORM_AUTHENTICATOR})
        yield Tab(page=page, cdp=cdp, authenticator=added["authenticatorId"], errors=errors)


@pytest.fixture
def tab(platform: Platform) -> Iterator[Tab]:
    with platform_tab() as opened:
        yield opened
        # No script error, CSP violation or failed request on any page we went through.
        assert opened.errors == [], opened.errors


def sign_in_with_password(platform: Platform, tab: Tab, url: str) -> None:
    page = tab.page
    page.goto(url)
    assert page.url.startswith(platform.portal + "/login"), page.url
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def sign_out(platform: Platform, tab: Tab) -> None:
    page = tab.page
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(platform.portal + "/login")


def test_register_a_passkey_on_the_account_page_then_sign_in_with_it_to_the_app(
    platform: Platform, tab: Tab
) -> None:
    from playwright.sync_api import expect

    platform.add_user("alice", PASSWORD, "admins")
    page, portal, app = tab.page, platform.portal, platform.app_url("whoami")

    # Password only (no second factor yet), then add a passkey on the account page.
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/")
    page.goto(portal + "/account")
    passkeys = page.locator("#passkeys")
    expect(passkeys).to_contain_text("No passkey yet")
    page.fill("#passkey-name", "Laptop fingerprint")
    passkeys.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(portal + "/account#passkeys")
    expect(page.locator("#passkey-register-error")).to_be_hidden()
    [credential] = tab.credentials()
    assert credential["rpId"] == "auth.localhost"
    assert credential["isResidentCredential"] is True  # a discoverable passkey
    registered_count = credential["signCount"]

    # Sign out; the app now asks for the password and then the passkey.
    sign_out(platform, tab)
    sign_in_with_password(platform, tab, app + "/reports?q=1")
    page.wait_for_url(portal + "/login/mfa*")
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    page.click("#passkey-button")
    page.wait_for_url(app + "/reports?q=1")
    body = json.loads(page.inner_text("body"))
    assert (body["user"], body["request"]["path"]) == ("alice", "/reports")
    assert tab.credentials()[0]["signCount"] == registered_count + 1

    records = platform.audit_records()
    enrolled = [r["details"] for r in records if r["action"] == "identity:mfa:enrolled"]
    assert [(d["factor"], d["name"]) for d in enrolled] == [("webauthn", "Laptop fingerprint")]
    verified = [r for r in records if r["action"] == "identity:mfa:verified"]
    assert [(r["actor"], r["details"]["factor"]) for r in verified] == [("user:alice", "webauthn")]


def test_a_copied_authenticator_is_refused_with_an_explanation_on_the_page(
    platform: Platform, tab: Tab
) -> None:
    from playwright.sync_api import expect

    platform.add_user("alice", PASSWORD, "admins")
    page, portal = tab.page, platform.portal
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/")
    page.goto(portal + "/account")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(portal + "/account#passkeys")
    assert len(tab.credentials()) == 1
    sign_out(platform, tab)
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/login/mfa*")
    page.click("#passkey-button")
    page.wait_for_url(portal + "/")
    sign_out(platform, tab)

    # Someone copied the key before that sign-in: the copy's counter is behind.
    [credential] = tab.credentials()
    copy = {**credential, "signCount": credential["signCount"] - 1}
    tab.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": tab.authenticator})
    tab.cdp.send(
        "WebAuthn.addCredential", {"authenticatorId": tab.authenticator, "credential": copy}
    )
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/login/mfa*")
    page.click("#passkey-button")

    error = page.locator("#passkey-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("may have been copied")
    expect(page.locator("#passkey-button")).to_be_enabled()
    assert page.url.startswith(portal + "/login/mfa")
    assert [e for e in tab.errors if "/webauthn/login/finish" in e], tab.errors
    tab.errors.clear()  # the refusal above was the point
    records = platform.audit_records()
    refused = [r for r in records if r["action"] == "identity:mfa:failed"]
    assert [r["reason"] for r in refused] == ["passkey-sign-count-regressed"]


def test_register_a_passkey_then_sign_in_with_it_then_remove_it(
    platform: Platform, tab: Tab
) -> None:
    from playwright.sync_api import expect

    platform.add_user("alice", PASSWORD, "admins")
    page, portal, app = tab.page, platform.portal, platform.app_url("whoami")

    # Password only (no second factor yet), then add a passkey on the account page.
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/")
    page.goto(portal + "/account")
    passkeys = page.locator("#passkeys")
    expect(passkeys).to_contain_text("No passkey yet")
    page.fill("#passkey-name", "Laptop fingerprint")
    passkeys.get_by_role("button", name="Add a passkey").click()
    expect(passkeys.locator("tbody tr")).to_have_count(1)
    expect(passkeys.locator("tbody tr").first).to_contain_text("Laptop fingerprint")
    expect(passkeys.locator("tbody tr").first).to_contain_text("never")
    [credential] = tab.credentials()
    assert credential["rpId"] == "auth.localhost"
    assert credential["isResidentCredential"] is True  # a discoverable passkey
    registered_count = credential["signCount"]

    # Sign out; the app now asks for the password and then the passkey.
    sign_out(platform, tab)
    sign_in_with_password(platform, tab, app + "/reports?q=1")
    page.wait_for_url(portal + "/login/mfa*")
    page.click("#passkey-button")
    page.wait_for_url(app + "/reports?q=1")
    body = json.loads(page.inner_text("body"))
    assert (body["user"], body["request"]["path"]) == ("alice", "/reports")
    assert tab.credentials()[0]["signCount"] == registered_count + 1

    # The account page lists the passkey as used; removing it brings back password-only.
    page.goto(portal + "/account")
    row = page.locator("#passkeys tbody tr").first
    expect(row).to_contain_text("Laptop fingerprint")
    expect(row).not_to_contain_text("never")
    row.get_by_role("button", name="Remove").click()
    page.wait_for_url(portal + "/account*")
    expect(page.locator("#passkeys")).to_contain_text("No passkey yet")
    expect(page.locator("#passkeys tbody tr")).to_have_count(0)

    sign_out(platform, tab)
    sign_in_with_password(platform, tab, app + "/again")
    page.wait_for_url(app + "/again")

    actions = [r["action"] for r in platform.audit_records()]
    assert actions.count("identity:mfa:enrolled") == 1
    assert actions.count("identity:mfa:verified") == 1
    assert actions.count("identity:mfa:removed") == 1
