"""The macOS parsers and collector on recorded outputs (tests/vectors/agent/macos/)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nevertrust.agent.posture import macos_parsers as p
from nevertrust.agent.posture.macos import collect_macos

from ._recorded import RecordedRunner, failed, ok, vector, vector_bytes


def mac(name: str) -> str:
    return vector("macos", name)


def test_sw_vers_names_the_os_and_version() -> None:
    assert p.sw_vers(mac("sw_vers-sonoma.txt")) == ("macOS", "14.5")
    assert p.sw_vers(mac("sw_vers-catalina.txt")) == ("Mac OS X", "10.15.7")
    assert p.sw_vers("") == (None, None)


@pytest.mark.parametrize(
    ("file", "encrypted"),
    [
        ("fdesetup-on.txt", True),
        ("fdesetup-off.txt", False),
        ("fdesetup-encrypting.txt", False),  # "On", but blocks still in the clear
        ("fdesetup-deferred.txt", False),  # turns on at the next logout, not yet
        ("fdesetup-decrypting.txt", False),
    ],
)
def test_filevault_counts_only_when_fully_on(file: str, encrypted: bool) -> None:
    assert p.filevault_on(mac(file)) is encrypted


def test_filevault_error_text_is_unknown() -> None:
    assert p.filevault_on("Error: unable to read FileVault state") is None


@pytest.mark.parametrize(
    ("file", "on"),
    [
        ("socketfilterfw-on.txt", True),
        ("socketfilterfw-off.txt", False),
        ("socketfilterfw-blockall.txt", True),
    ],
)
def test_application_firewall_state(file: str, on: bool) -> None:
    assert p.firewall_enabled(mac(file)) is on


def test_install_history_ignores_background_security_data_and_app_store() -> None:
    # XProtect data of 11 June and Slack of 30 May do not count; macOS 14.5 of 14 May does.
    newest = p.install_history_newest(vector_bytes("macos", "InstallHistory.plist"))
    assert newest == datetime(2024, 5, 14, 8, 43, 19, tzinfo=UTC)


def test_a_damaged_install_history_is_unknown() -> None:
    assert p.install_history_newest(b"<plist><array><dict>") is None


def test_softwareupdate_history_in_us_layout() -> None:
    newest = p.softwareupdate_history_newest(mac("softwareupdate-history.txt"))
    assert newest == datetime(2024, 5, 14, 8, 43, 19)


def test_softwareupdate_history_in_a_day_first_locale_is_refused_not_guessed() -> None:
    assert p.softwareupdate_history_newest(mac("softwareupdate-history-daymonth.txt")) is None


def test_process_names_from_ps() -> None:
    names = p.process_names(mac("ps-axco-falcon.txt"))
    assert "falcond" in names and "COMMAND" not in names
    assert p.process_names("ps: permission denied") == []


@pytest.mark.parametrize(
    ("file", "on"),
    [
        ("sysadminctl-immediate.txt", True),
        ("sysadminctl-delay.txt", True),
        ("sysadminctl-off.txt", False),
    ],
)
def test_screen_lock_from_sysadminctl(file: str, on: bool) -> None:
    assert p.screen_lock_on(mac(file)) is on


def test_a_mac_collects_every_field_from_its_commands() -> None:
    runner = RecordedRunner(
        commands={
            ("sw_vers",): ok(mac("sw_vers-sonoma.txt")),
            ("uname", "-r"): ok("23.5.0\n"),
            ("fdesetup", "status"): ok(mac("fdesetup-on.txt")),
            ("/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate"): ok(
                mac("socketfilterfw-off.txt")
            ),
            ("ps", "-axco", "command"): ok(mac("ps-axco-falcon.txt")),
            # sysadminctl answers on standard error
            ("sysadminctl", "-screenLock", "status"): ok("", mac("sysadminctl-delay.txt")),
        },
        files={
            "/Library/Receipts/InstallHistory.plist": vector_bytes("macos", "InstallHistory.plist")
        },
    )
    now = datetime(2024, 6, 13, 9, 0, tzinfo=UTC)
    assert collect_macos(runner, now=now).posture.to_json() == {
        "platform": "macos",
        "os_name": "macOS",
        "os_version": "14.5",
        "kernel_version": "23.5.0",
        "patch_age_days": 30,
        "disk_encrypted": True,
        "firewall_active": False,
        "edr_running": True,
        "edr_name": "CrowdStrike Falcon (falcond)",
        "screen_lock_enabled": True,
        "collected_at": "2024-06-13T09:00:00Z",
    }


def test_a_mac_whose_commands_fail_reports_nulls() -> None:
    runner = RecordedRunner(commands={("fdesetup", "status"): failed("must be root")})
    posture = collect_macos(runner, now=datetime(2024, 6, 13, tzinfo=UTC)).posture
    assert posture.os_version == "unknown"
    assert (posture.patch_age_days, posture.disk_encrypted, posture.firewall_active) == (
        None,
        None,
        None,
    )
    assert (posture.edr_running, posture.screen_lock_enabled) == (None, None)
