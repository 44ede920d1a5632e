"""The agent home: created private, refused when others could change it, written atomically."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nevertrust.agent import AgentHome, AgentHomeUnsafe, AgentState, NotEnrolled

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        home = AgentHome(tmp_path / "a" / "agent")
        home.check(create=True)
    finally:
        os.umask(old)
    assert mode(home.path) == 0o700


@pytest.mark.parametrize("bits", [0o770, 0o757, 0o722])
def test_a_home_others_can_write_is_refused_with_the_fix(tmp_path: Path, bits: int) -> None:
    path = tmp_path / "agent"
    path.mkdir()
    path.chmod(bits)
    with pytest.raises(AgentHomeUnsafe) as caught:
        AgentHome(path).check(create=True)
    assert "chmod 700" in caught.value.message


def test_a_readable_but_not_writable_home_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "agent"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    AgentHome(path).check()


def test_the_key_is_written_0600_and_a_loosened_key_is_refused(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    home.write_key(b"-----BEGIN PRIVATE KEY-----\n")
    key = home.file(AgentHome.KEY)
    assert mode(key) == 0o600
    assert home.read_key().startswith(b"-----BEGIN")
    key.chmod(0o644)
    with pytest.raises(AgentHomeUnsafe, match="chmod 600"):
        home.read_key()


def test_writes_replace_files_whole_and_leave_no_temporaries(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    home.write("device.pem", b"old")
    home.write("device.pem", b"new")
    assert home.file("device.pem").read_bytes() == b"new"
    assert sorted(p.name for p in home.path.iterdir()) == ["device.pem"]


def test_state_round_trips_and_keeps_the_contract_fields(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    state = AgentState(
        server="https://auth.example.com",
        device_id="dev_abc",
        state="compliant",
        reasons=("firewall-off",),
        last_report_at=when,
        last_iat=1_764_072_000,
    )
    home.save_state(state)
    data = json.loads(home.file("state.json").read_text())
    assert {"server", "device_id", "last_report_at", "state", "reasons"} <= data.keys()
    assert data["last_report_at"] == "2026-11-25T12:00:00Z"
    assert home.load_state() == state


def test_no_state_means_not_enrolled(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    with pytest.raises(NotEnrolled, match="agent enroll"):
        home.load_state()


def test_a_damaged_state_file_says_how_to_recover(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.check(create=True)
    home.file("state.json").write_text('{"server": 1}')
    with pytest.raises(AgentHomeUnsafe, match="--force"):
        home.load_state()


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert AgentHome(Path("~/.nevertrust-agent")).path == tmp_path / ".nevertrust-agent"
