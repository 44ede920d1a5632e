"""``nevertrust agent bind-browser``: the link it prints, made offline with the device key.

The server spends each proof once and only takes a proof newer than the last one spent,
so the link must carry a proof the server will verify with the key it stored at
enrolment, and its ``iat`` must never repeat: not between two links made in one second,
and not between a link and the posture report that follows it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.agent import (
    Agent,
    AgentHome,
    AgentState,
    Collected,
    NotEnrolled,
    Posture,
    ReportOutcome,
    ServerClient,
    ServerEndpoint,
)
from nevertrust.agent.signing import new_private_key, private_key_pem
from nevertrust.devices.browser_binding import verify_bind_proof

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX agent home")

SERVER = "https://auth.example.com"
DEVICE = "dev_testdevice000000"
NOW = datetime(2026, 11, 25, 12, 0, 0, 400_000, tzinfo=UTC)  # mid-second, on purpose


def fixed_posture() -> Collected:
    return Collected(
        Posture(
            platform="linux",
            os_name="Debian GNU/Linux",
            os_version="12.7",
            kernel_version="6.1.0-25-amd64",
            patch_age_days=3,
            disk_encrypted=True,
            firewall_active=True,
            edr_running=False,
            edr_name=None,
            screen_lock_enabled=None,
            collected_at=NOW,
        )
    )


class RecordingServer(ServerClient):
    """Stands in for the portal's report endpoint: keeps what was sent, answers compliant.

    Only ``report`` is used; nothing is dialled (unit tests run with the network off)."""

    def __init__(self) -> None:  # no HTTP client: nothing here talks to a network
        self.reports: list[str] = []

    def close(self) -> None:
        pass

    def report(self, *, device_id: str, jws: str) -> ReportOutcome:
        assert device_id == DEVICE
        self.reports.append(jws)
        return ReportOutcome(
            state="compliant",
            compliant=True,
            reasons=(),
            certificate=None,
            certificate_expires_at=None,
        )


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return new_private_key()


@pytest.fixture
def home(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> AgentHome:
    """A home as a successful enrolment leaves it: the key and ``state.json``."""
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    home.write_key(private_key_pem(key))
    home.save_state(AgentState(server=SERVER, device_id=DEVICE, state="compliant"))
    return home


@pytest.fixture
def server() -> RecordingServer:
    return RecordingServer()


@pytest.fixture
def agent(home: AgentHome, server: RecordingServer) -> Agent:
    """An agent whose clock stands still: every call happens in the same second."""

    def open_client(endpoint: ServerEndpoint, ca_file: str | None) -> ServerClient:
        assert endpoint.url == SERVER
        return server

    return Agent(home, collect=fixed_posture, clock=lambda: NOW, open_client=open_client)


def proof_of(link: str) -> str:
    query = parse_qs(urlsplit(link).query, strict_parsing=True)
    assert list(query) == ["proof"]
    (proof,) = query["proof"]
    return proof


def iat_of(token: str) -> int:
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    assert isinstance(iat, int)
    return iat


def test_the_link_opens_the_portals_bind_page_with_a_proof(agent: Agent) -> None:
    link = agent.bind_browser_link()
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{SERVER}/account/devices/bind"
    assert not parts.fragment
    assert proof_of(link).count(".") == 2


def test_the_proof_verifies_with_the_devices_public_key(
    agent: Agent, key: ec.EllipticCurvePrivateKey
) -> None:
    """What the server does with the key it stored at enrolment."""
    proof = proof_of(agent.bind_browser_link())
    iat = verify_bind_proof(
        proof,
        device_id=DEVICE,
        public_key=key.public_key(),
        now=NOW,
        window=timedelta(seconds=300),
    )
    assert iat == int(NOW.timestamp())
    claims = jwt.decode(proof, options={"verify_signature": False})
    assert claims["sub"] == DEVICE
    assert claims["purpose"] == "bind-browser"
    assert jwt.get_unverified_header(proof) == {"alg": "ES256", "typ": "JWT"}


def test_two_links_in_one_second_never_share_an_iat(agent: Agent, home: AgentHome) -> None:
    """Otherwise the second link would look like the first one used twice."""
    first, second = (iat_of(proof_of(agent.bind_browser_link())) for _ in range(2))
    assert second > first
    assert home.load_state().last_iat == second
    assert proof_of(agent.bind_browser_link()) != proof_of(agent.bind_browser_link())


def test_a_report_after_a_link_is_dated_after_it(
    agent: Agent, home: AgentHome, server: RecordingServer
) -> None:
    """The link's iat is saved, so the next report is not taken for a replay."""
    link_iat = iat_of(proof_of(agent.bind_browser_link()))
    assert home.load_state().last_iat == link_iat
    agent.report()
    (report,) = server.reports
    assert iat_of(report) > link_iat


def test_a_link_after_a_report_is_dated_after_it(
    agent: Agent, home: AgentHome, server: RecordingServer
) -> None:
    agent.report()
    (report,) = server.reports
    assert iat_of(proof_of(agent.bind_browser_link())) > iat_of(report)


def test_making_a_link_keeps_the_rest_of_the_state(agent: Agent, home: AgentHome) -> None:
    before = home.load_state()
    agent.bind_browser_link()
    after = home.load_state()
    assert (after.server, after.device_id, after.state) == (
        before.server,
        before.device_id,
        before.state,
    )


def test_without_a_home_the_agent_says_to_enrol_first(tmp_path: Path) -> None:
    agent = Agent(AgentHome(tmp_path / "nowhere"))
    with pytest.raises(NotEnrolled, match="agent enroll"):
        agent.bind_browser_link()


def test_an_unenrolled_home_says_to_enrol_first(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    with pytest.raises(NotEnrolled, match="agent enroll"):
        Agent(home).bind_browser_link()
    assert not home.enrolled()  # nothing was written
