"""A browser bound to a device end to end: the real agent on this machine, the real
``nevertrust up`` and a real Chromium whose platform authenticator (CDP) plays the
computer's screen lock.

Browsers cannot show the device certificate that opens device-only apps to the agent's
own clients, so the agent prints a one-time link (``nevertrust agent bind-browser``) that
registers the browser's platform passkey as the device's. Sessions opened with that
passkey then count as the device: the app opens while the device is compliant and
closes on the next page load once an admin quarantines it. A browser signed in with the
password alone shows no device, and the app says a compliant device is required.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import new_platform, running
from tests.e2e.test_agent import agent
from tests.e2e.test_passkeys import PASSWORD, platform_tab, sign_in_with_password, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_browser_bound_by_the_agent_opens_a_device_only_app_until_the_device_is_quarantined(
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    nt = new_platform(tmp_path)
    with running(nt), platform_tab() as tab:
        page, portal, app = tab.page, nt.portal, nt.app_url("whoami")

        # The admin: whoami is for staff, from a compliant device only. This test machine
        # has no disk encryption: judge it by what it can show.
        nt.cli("groups", "add", "staff")
        nt.add_user("alice", PASSWORD, "staff")
        nt.cli("devices", "policy", "set", "linux", "--no-require-encryption",
               "--max-patch-age", "3650")  # fmt: skip
        nt.cli("apps", "allow", "whoami", "--group", "staff", "--require-compliant-device")

        # Alice enrols this machine with the real agent; its real posture complies.
        token = nt.cli("devices", "token", "--user", "alice").stdout.strip()
        home = tmp_path / "agent"
        enrolled = agent(nt, home, "enroll", "--server", nt.portal, "--token", token)
        device_id = enrolled.stdout.split("device: ", 1)[1].split()[0]
        reported = agent(nt, home, "report")
        assert "state: compliant" in reported.stdout, reported.stdout

        # Signed in with the password alone, the browser shows no device: the app says why.
        sign_in_with_password(nt, tab, app + "/hello")
        page.wait_for_url(app + "/hello")
        denial = page.locator("body")
        expect(denial).to_contain_text("This application needs a compliant device")
        expect(denial).to_contain_text("device-unknown")
        expect(denial).to_contain_text("only be used from an enrolled device")

        # The agent's one-time link, opened in this browser, binds its platform passkey.
        link = agent(nt, home, "bind-browser").stdout.strip()
        assert link.startswith(portal + "/account/devices/bind?proof="), link
        page.goto(link)
        bind = page.locator("#device-bind")
        expect(bind).to_contain_text(device_id)
        expect(bind.locator(".pill")).to_have_text("compliant")
        register = page.locator("form#passkey-register")
        register.get_by_role("button", name="Bind this browser").click()
        page.wait_for_url(portal + "/account#devices")
        expect(page.locator("#passkey-register-error")).to_be_hidden()
        [credential] = tab.credentials()
        assert credential["rpId"] == "auth.localhost"
        assert credential["isResidentCredential"] is True
        [row] = page.locator("#passkeys tbody tr").all()
        expect(row).to_contain_text(f"device {device_id}")
        expect(page.locator("#devices")).to_contain_text(device_id)

        # Signed in again with that passkey alone, the session is the device's: the app opens.
        sign_out(nt, tab)
        page.goto(app + "/hello")
        assert page.url.startswith(portal + "/login"), page.url
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url(app + "/hello")
        body = json.loads(page.inner_text("body"))
        assert (body["user"], body["request"]["path"]) == ("alice", "/hello")

        # The admin quarantines the device: the very next page load is refused, and says why.
        nt.cli("devices", "quarantine", device_id)
        response = page.reload()
        assert response is not None and response.status == 403
        denial = page.locator("body")
        expect(denial).to_contain_text("This application needs a compliant device")
        expect(denial).to_contain_text("device-noncompliant")
        expect(denial).to_contain_text("Your device does not meet the security requirements")

        # The two refusals of the app were the point; nothing else failed on any page.
        assert tab.errors == [f"403 {app}/hello"] * 2, tab.errors

        binds = [r for r in nt.audit_records() if r["action"] == "devices:browser:bind"]
        assert [(r["actor"], r["outcome"], r["target"]) for r in binds] == [
            ("user:alice", "success", f"device:{device_id}")
        ]
