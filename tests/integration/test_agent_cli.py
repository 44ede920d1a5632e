"""``nevertrust agent`` as a person or a timer runs it: a real process, real output, exit codes.

Against the contract's local test server (test_agent_contract.py); the same commands meet
the platform's own server in tests/e2e/test_agent.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_agent_contract import ContractServer

_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")


@pytest.fixture
def server() -> Iterator[ContractServer]:
    running = ContractServer()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def agent_home(tmp_path: Path) -> Path:
    return tmp_path / "agent-home"


def agent(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_AGENT_HOME"] = str(home)
    return subprocess.run(
        [NEVERTRUST, "agent", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_enroll_report_status_round_trip(server: ContractServer, agent_home: Path) -> None:
    enrolled = agent(agent_home, "enroll", "--server", server.url, "--token", server.token())
    assert enrolled.returncode == 0, enrolled.stderr
    device_id = next(iter(server.devices))
    assert f"device: {device_id}" in enrolled.stdout
    assert "state: registered" in enrolled.stdout

    reported = agent(agent_home, "report")
    assert reported.returncode == 0, reported.stderr
    assert "state: " in reported.stdout and "reasons: " in reported.stdout
    assert server.devices[device_id].reports == 1

    status = agent(agent_home, "status", "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["device_id"] == device_id
    assert shown["server"] == server.url
    assert shown["state"] == server.devices[device_id].state
    assert shown["last_report_at"] is not None
    assert shown["certificate_expires_at"] is not None

    text = agent(agent_home, "status")
    assert f"device:      {device_id}" in text.stdout
    assert "last report:" in text.stdout


def test_personal_device_and_token_from_standard_input(
    server: ContractServer, agent_home: Path
) -> None:
    token = server.token()
    done = agent(
        agent_home, "enroll", "--server", server.url, "--token", "-", "--personal", stdin=token
    )
    assert done.returncode == 0, done.stderr
    assert next(iter(server.devices.values())).ownership == "personal"


def test_enrolling_twice_needs_force(server: ContractServer, agent_home: Path) -> None:
    args = ("enroll", "--server", server.url, "--token")
    assert agent(agent_home, *args, server.token()).returncode == 0
    again = agent(agent_home, *args, server.token())
    assert again.returncode != 0
    assert "error[already-enrolled]" in again.stderr and "--force" in again.stderr
    assert agent(agent_home, *args, server.token(), "--force").returncode == 0
    assert len(server.devices) == 2


def test_a_refused_report_fails_the_command_with_the_reason(
    server: ContractServer, agent_home: Path
) -> None:
    assert (
        agent(agent_home, "enroll", "--server", server.url, "--token", server.token()).returncode
        == 0
    )
    server.devices.clear()  # an admin removed the device
    refused = agent(agent_home, "report")
    assert refused.returncode != 0
    assert "error[report-refused]" in refused.stderr
    assert "enroll --force" in refused.stderr
    status = agent(agent_home, "status")
    assert "last error:" in status.stdout


def test_a_server_that_is_not_running_is_named(agent_home: Path, server: ContractServer) -> None:
    url = server.url
    server.stop()
    done = agent(agent_home, "enroll", "--server", url, "--token", "t")
    assert done.returncode == 69  # EX_UNAVAILABLE
    assert "connection refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_before_enrolment_says_how_to_enrol(agent_home: Path) -> None:
    done = agent(agent_home, "report")
    assert done.returncode != 0
    assert "error[not-enrolled]" in done.stderr and "agent enroll" in done.stderr


def test_posture_shows_what_would_be_sent_and_why(agent_home: Path) -> None:
    done = agent(agent_home, "posture", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["posture"]["platform"] == "linux"
    assert shown["posture"]["kernel_version"] == os.uname().release
    assert "disk_encrypted" in shown["notes"]
    assert not agent_home.exists()  # nothing stored, nothing sent
