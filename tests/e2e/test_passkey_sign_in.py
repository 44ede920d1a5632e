"""Passkey-first sign-in in a real Chromium with a virtual authenticator (CDP).

No user name and no password: the login page's "Sign in with a passkey" asks the
authenticator for any passkey it holds for this site, and the passkey says who it is.
The browser fixture (``tab``) is the one the passkey tests use.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_passkeys import PASSWORD, Tab, sign_in_with_password, sign_out
from tests.e2e.test_passkeys import tab as tab  # the fixture, shared

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_registered_passkey_alone_signs_in_from_an_app_url(
    platform: Platform,
    tab: Tab,
) -> None:
    from playwright.sync_api import expect

    platform.add_user("alice", PASSWORD, "admins")
    page, portal, app = tab.page, platform.portal, platform.app_url("whoami")

    # Once, with the password: add a passkey on the account page, then sign out.
    sign_in_with_password(platform, tab, portal + "/login")
    page.wait_for_url(portal + "/")
    page.goto(portal + "/account")
    page.fill("#passkey-name", "Laptop fingerprint")
    page.locator("#passkeys").get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(portal + "/account#passkeys")
    [credential] = tab.credentials()
    assert credential["isResidentCredential"] is True
    sign_out(platform, tab)

    # From the app: the login page, one click, and back on the app as alice.
    page.goto(app + "/reports?q=1")
    assert page.url.startswith(portal + "/login"), page.url
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()
    expect(page.locator("#username")).to_have_value("")
    button.click()
    page.wait_for_url(app + "/reports?q=1")

    body = json.loads(page.inner_text("body"))
    assert (body["user"], body["request"]["path"]) == ("alice", "/reports")
    records = platform.audit_records()
    logins = [r for r in records if r["action"] == "identity:login:succeeded"]
    assert logins[-1]["actor"] == "user:alice"
    assert logins[-1]["details"]["methods"] == ["webauthn", "hwk", "mfa"]
