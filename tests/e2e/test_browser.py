"""A real Chromium walks the first-run path: setup link, sign-in, app, console."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.chromium import chromium_context
from tests.e2e.conftest import Platform

SCREENSHOT = Path("/tmp/nt-console.png")
ADMIN_PASSWORD = "a long admin pass phrase"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(platform: Platform) -> Iterator[object]:
    with chromium_context() as context:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab


def test_admin_sets_password_from_setup_link_signs_in_and_sees_app_and_console(
    platform: Platform, page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    portal = platform.portal

    page.goto(platform.setup_link())
    expect(page.locator("h1")).to_have_text("Choose a password for admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.fill("#confirm", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Password set")
    # The link is spent.
    page.goto(platform.setup_link())
    expect(page.locator("h1")).to_have_text("This setup link is not valid")

    page.goto(portal + "/login")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(portal + "/")
    expect(page.get_by_text("whoami").first).to_be_visible()

    response = page.goto(platform.app_url("whoami") + "/")
    assert response is not None and response.status == 200
    assert page.url == platform.app_url("whoami") + "/"
    body = json.loads(response.text())
    assert (body["user"], body["groups"]) == ("admin", ["admins"])
    assert '"admin"' in page.inner_text("body")
    cookies = {
        (c["name"], c["domain"]) for c in page.context.cookies() if c["name"].startswith("nt_")
    }
    assert ("nt_session", "auth.localhost") in cookies
    assert ("nt_app_session", "whoami.localhost") in cookies

    page.goto(portal + "/console")
    users = page.locator("table", has=page.locator("th", has_text="Status"))
    expect(users).to_be_visible()
    expect(users.locator("tbody tr")).to_have_count(1)
    expect(users.locator("tbody tr td").first).to_have_text("admin")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    # Sign out through the page, then come back through the app's redirect chain: the
    # form posts and cross-host redirects must pass the portal's CSP (form-action).
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(portal + "/login")
    page.goto(platform.app_url("whoami") + "/again?x=1")
    assert page.url.startswith(portal + "/login?")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(platform.app_url("whoami") + "/again?x=1")
    assert json.loads(page.inner_text("body"))["request"]["path"] == "/again"
