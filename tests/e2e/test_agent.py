"""The device agent on this machine against the real platform (``nevertrust up``).

A real agent process enrols with a token made by the real CLI, reports this machine's
real posture signed with its key, and the platform's inventory shows it.
"""

from __future__ import annotations

import json
import platform as host
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.conftest import NEVERTRUST, Platform

PASSWORD = "correct horse battery staple"


def agent(
    nt: Platform, home: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``nevertrust agent ARGS`` as a device would run it: its own home, nothing of the server's."""
    env = {k: v for k, v in nt.env.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_AGENT_HOME"] = str(home)
    done = subprocess.run(
        [NEVERTRUST, "agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"agent {args} -> {done.returncode}\n{done.stderr}"
    return done


def listed(nt: Platform) -> list[dict[str, Any]]:
    data = json.loads(nt.cli("devices", "list", "--json").stdout)
    return data if isinstance(data, list) else list(data["devices"])


def test_agent_enrols_and_reports_this_machines_real_posture(
    platform: Platform, tmp_path: Path
) -> None:
    platform.add_user("alice", PASSWORD)
    token = platform.cli("devices", "token", "--user", "alice").stdout.strip()
    assert token and "\n" not in token
    home = tmp_path / "agent"

    enrolled = agent(platform, home, "enroll", "--server", platform.portal, "--token", token)
    device_id = enrolled.stdout.split("device: ", 1)[1].split()[0]
    assert device_id.startswith("dev_")
    assert (home / "device.key").stat().st_mode & 0o777 == 0o600

    reported = agent(platform, home, "report")
    assert "state: " in reported.stdout

    devices = [d for d in listed(platform) if d["device_id"] == device_id]
    assert len(devices) == 1
    device = devices[0]
    release = host.freedesktop_os_release()
    posture = device["posture"]
    assert posture["platform"] == "linux"
    assert posture["os_version"] == release["VERSION_ID"]
    assert posture["kernel_version"] == host.release()
    assert device["state"] in ("compliant", "noncompliant")
    assert device["last_report_at"]

    status = json.loads(agent(platform, home, "status", "--json").stdout)
    assert (status["device_id"], status["state"]) == (device_id, device["state"])

    # The token was one-time: a second device cannot use it.
    again = agent(
        platform,
        tmp_path / "other",
        "enroll",
        "--server",
        platform.portal,
        "--token",
        token,
        check=False,
    )
    assert again.returncode != 0 and "error[enrolment-refused]" in again.stderr


def test_agent_sees_quarantine_and_is_told_to_enrol_again_after_removal(
    platform: Platform, tmp_path: Path
) -> None:
    platform.add_user("bob", PASSWORD)
    token = platform.cli("devices", "token", "--user", "bob").stdout.strip()
    home = tmp_path / "agent"
    agent(platform, home, "enroll", "--server", platform.portal, "--token", token, "--personal")
    device_id = json.loads(agent(platform, home, "status", "--json").stdout)["device_id"]
    assert [d["ownership"] for d in listed(platform) if d["device_id"] == device_id] == ["personal"]

    platform.cli("devices", "quarantine", device_id)
    assert "state: quarantined" in agent(platform, home, "report").stdout

    platform.cli("devices", "remove", device_id)
    refused = agent(platform, home, "report", check=False)
    assert refused.returncode != 0
    assert "error[report-refused]" in refused.stderr
    assert "enroll --force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "last error:" in agent(platform, home, "status").stdout
