"""Device trust end to end: a real agent on this machine enrols against ``nevertrust up``,
reports its real posture, and its certificate opens an app that requires a compliant
device to the real curl over mTLS; a quarantine through the CLI closes it on the next
request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Platform, free_port, new_platform, running
from tests.e2e.test_agent import agent

PASSWORD = "correct horse battery staple"


def curl(nt: Platform, mtls_port: int, cookie: str, device: Path | None) -> tuple[int, str]:
    ca = nt.home / "run" / "mtls" / "devices-ca.pem"
    args = [
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
        "--cacert", str(ca),
        "--resolve", f"whoami.localhost:{mtls_port}:127.0.0.1",
        "-H", f"cookie: nt_app_session={cookie}",
        f"https://whoami.localhost:{mtls_port}/hello",
    ]  # fmt: skip
    if device is not None:
        args[1:1] = ["--cert", str(device / "device.pem"), "--key", str(device / "device.key")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.slow
def test_enrolled_compliant_device_opens_the_app_until_it_is_quarantined(tmp_path: Path) -> None:
    mtls_port = free_port()
    nt = new_platform(tmp_path, env={"NEVERTRUST_GATEWAY__MTLS_PORT": str(mtls_port)})
    with running(nt):
        nt.add_user("alice", PASSWORD)
        nt.cli("groups", "add", "staff")
        nt.cli("groups", "add-member", "staff", "alice")
        # This test machine has no disk encryption: judge it by what it can show.
        nt.cli("devices", "policy", "set", "linux", "--no-require-encryption",
               "--max-patch-age", "3650")  # fmt: skip
        nt.cli("apps", "allow", "whoami", "--group", "staff", "--require-compliant-device")

        token = nt.cli("devices", "token", "--user", "alice").stdout.strip()
        home = tmp_path / "agent"
        agent(nt, home, "enroll", "--server", nt.portal, "--token", token)
        reported = agent(nt, home, "report")
        assert "state: compliant" in reported.stdout, reported.stdout
        device_id = json.loads(agent(nt, home, "status", "--json").stdout)["device_id"]

        # Sign in with a browser-like client; on the plain port there is no device, so
        # the app itself says why it is closed.
        b = nt.browser()
        app = nt.app_url("whoami")
        form, _ = b.go("GET", app + "/hello")
        page, _ = nt.login(b, "alice", PASSWORD, form=form)
        assert page.status_code == 403 and "device-unknown" in page.text
        cookie = b.cookies(urlsplit(app).netloc)["nt_app_session"]

        with_device = curl(nt, mtls_port, cookie, home)
        without_device = curl(nt, mtls_port, cookie, None)

        nt.cli("devices", "quarantine", device_id)
        quarantined = curl(nt, mtls_port, cookie, home)

    assert with_device[0] == 200, with_device
    assert json.loads(with_device[1])["user"] == "alice"
    assert without_device[0] == 403 and "device-unknown" in without_device[1]
    assert quarantined[0] == 403 and "device-noncompliant" in quarantined[1]
