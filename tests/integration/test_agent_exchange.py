"""The agent against a real local server keeping the device contract (test_agent_contract).

Real sockets, real TLS, real keys and signatures, this machine's real posture; the only
thing not real yet is the platform's own server, which tests/e2e/test_agent.py uses.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from nevertrust.agent import (
    Agent,
    AgentHome,
    AgentHomeUnsafe,
    AlreadyEnrolled,
    Collected,
    EnrolmentRefused,
    NotEnrolled,
    ReportRefused,
    ServerUnreachable,
    collect_posture,
)
from nevertrust.agent.signing import new_private_key, private_key_pem

from .test_agent_contract import ContractServer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX agent home")


@pytest.fixture
def server() -> Iterator[ContractServer]:
    running = ContractServer()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def home(tmp_path: Path) -> AgentHome:
    return AgentHome(tmp_path / "agent")


@pytest.fixture
def agent(home: AgentHome) -> Agent:
    return Agent(home)


def encrypted_posture(value: bool | None) -> Collected:
    real = collect_posture()
    return replace(real, posture=replace(real.posture, disk_encrypted=value))


def test_enrol_stores_a_private_key_and_the_certificate_for_it(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    result = agent.enroll(server=server.url, token=server.token())
    assert result.state.device_id in server.devices
    assert result.state.state == "registered"
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.file("device.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(home.file("device.pem").read_bytes())
    stored = server.devices[result.state.device_id]
    assert cert.public_key() == stored.public_key
    assert home.file("ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    state = json.loads(home.file("state.json").read_text())
    assert state["server"] == server.url
    assert state["device_id"] == result.state.device_id
    # What was sent: the contract's enrolment body, with this machine's real posture.
    sent = json.loads(server.seen[0].body)
    assert set(sent) == {"token", "public_key", "name", "ownership", "posture"}
    assert sent["ownership"] == "managed"
    assert sent["posture"]["kernel_version"] == os.uname().release


def test_localhost_servers_are_reached_at_loopback_with_their_host_header(
    agent: Agent, server: ContractServer
) -> None:
    agent.enroll(server=server.url, token=server.token())
    assert server.seen[0].host == f"auth.localhost:{server.port}"


def test_report_is_signed_with_the_enrolled_key_and_the_state_is_stored(
    home: AgentHome, server: ContractServer
) -> None:
    agent = Agent(home, collect=lambda: encrypted_posture(False))
    enrolled = agent.enroll(server=server.url, token=server.token())
    reported = agent.report()
    assert (reported.outcome.state, reported.outcome.reasons) == (
        "noncompliant",
        ("disk-not-encrypted",),
    )
    last = server.seen[-1]
    assert last.content_type == "application/jose"
    assert jwt.get_unverified_header(last.body.decode()) == {"alg": "ES256", "typ": "JWT"}
    assert server.devices[enrolled.state.device_id].reports == 1
    stored = home.load_state()
    assert (stored.state, stored.reasons) == ("noncompliant", ("disk-not-encrypted",))
    assert stored.last_report_at is not None and stored.last_error is None


def test_reports_in_quick_succession_are_never_taken_for_replays(
    agent: Agent, server: ContractServer
) -> None:
    agent.enroll(server=server.url, token=server.token())
    for _ in range(3):  # within one second: iat must still grow
        agent.report()
    device = next(iter(server.devices.values()))
    assert device.reports == 3


def test_a_wrong_token_is_refused_and_nothing_is_written(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    with pytest.raises(EnrolmentRefused, match="enrolment-token-invalid"):
        agent.enroll(server=server.url, token="ntd_wrong")
    assert list(home.path.iterdir()) == []


def test_re_enrolling_asks_for_force_and_force_makes_a_new_key(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    first = agent.enroll(server=server.url, token=server.token())
    old_key = home.file("device.key").read_bytes()
    with pytest.raises(AlreadyEnrolled, match="--force") as caught:
        agent.enroll(server=server.url, token=server.token())
    assert first.state.device_id in caught.value.message
    second = agent.enroll(server=server.url, token=server.token(), force=True)
    assert second.state.device_id != first.state.device_id
    assert home.file("device.key").read_bytes() != old_key
    assert home.load_state().device_id == second.state.device_id


def test_a_refused_forced_re_enrolment_keeps_the_old_one(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    first = agent.enroll(server=server.url, token=server.token())
    key = home.file("device.key").read_bytes()
    with pytest.raises(EnrolmentRefused):
        agent.enroll(server=server.url, token="ntd_used", force=True)
    assert home.file("device.key").read_bytes() == key
    assert home.load_state().device_id == first.state.device_id


def test_a_report_signed_with_another_key_is_refused_and_remembered(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    agent.enroll(server=server.url, token=server.token())
    home.write_key(private_key_pem(new_private_key()))  # someone swapped the key
    with pytest.raises(ReportRefused, match="report-signature-invalid") as caught:
        agent.report()
    assert "--force" in caught.value.message
    assert caught.value.exit_code != 0
    assert "report-signature-invalid" in (home.load_state().last_error or "")


def test_a_removed_device_is_told_to_enrol_again(agent: Agent, server: ContractServer) -> None:
    enrolled = agent.enroll(server=server.url, token=server.token())
    del server.devices[enrolled.state.device_id]
    with pytest.raises(ReportRefused, match="no longer knows this device"):
        agent.report()


def test_a_clock_far_behind_gets_a_stale_refusal_that_names_the_clock(
    home: AgentHome, server: ContractServer
) -> None:
    behind = Agent(home, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    behind.enroll(server=server.url, token=server.token())
    with pytest.raises(ReportRefused, match="report-stale.*clock"):
        behind.report()


def test_a_renewed_certificate_replaces_the_old_one(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    agent.enroll(server=server.url, token=server.token())
    before = home.file("device.pem").read_bytes()
    server.renew_next = True
    result = agent.report()
    assert result.certificate_renewed
    after = home.file("device.pem").read_bytes()
    assert after != before
    serial = x509.load_pem_x509_certificate(after).serial_number
    assert serial != x509.load_pem_x509_certificate(before).serial_number
    assert agent.status().certificate_expires_at is not None


def test_a_server_that_is_down_gets_a_clear_message_kept_for_status(
    agent: Agent, home: AgentHome, server: ContractServer
) -> None:
    agent.enroll(server=server.url, token=server.token())
    server.stop()
    with pytest.raises(ServerUnreachable, match="connection refused"):
        agent.report()
    status = agent.status()
    assert status.state.last_error is not None
    assert "server-unreachable" in status.state.last_error


def test_nothing_to_report_before_enrolment(agent: Agent) -> None:
    with pytest.raises(NotEnrolled, match="agent enroll"):
        agent.report()
    with pytest.raises(NotEnrolled):
        agent.status()


def test_a_group_writable_home_is_refused_before_anything_is_sent(
    home: AgentHome, server: ContractServer
) -> None:
    home.path.mkdir()
    home.path.chmod(0o775)
    with pytest.raises(AgentHomeUnsafe, match="writable by group"):
        Agent(home).enroll(server=server.url, token=server.token())
    assert server.seen == []


@pytest.fixture
def tls_server() -> Iterator[ContractServer]:
    server = ContractServer(tls=True)
    server.start()
    yield server
    server.stop()


def test_https_portal_with_a_private_ca_needs_the_ca_file(
    agent: Agent, tmp_path: Path, tls_server: ContractServer
) -> None:
    with pytest.raises(ServerUnreachable, match="--ca-file"):
        agent.enroll(server=tls_server.url, token=tls_server.token())
    ca = tls_server.ca_file(tmp_path)
    agent.enroll(server=tls_server.url, token=tls_server.token(), ca_file=str(ca))
    assert agent.report().outcome.state in ("compliant", "noncompliant")
