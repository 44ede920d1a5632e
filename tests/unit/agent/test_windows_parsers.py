"""The Windows parsers and collector on recorded outputs (tests/vectors/agent/windows/)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nevertrust.agent.posture import windows_parsers as p
from nevertrust.agent.posture.windows import collect_windows

from ._recorded import RecordedRunner, failed, ok, vector


def win(name: str) -> str:
    return vector("windows", name)


def test_os_caption_and_version_from_cim_json() -> None:
    assert p.os_caption_version(win("cim-os-win11.json")) == (
        "Microsoft Windows 11 Pro",
        "10.0.22631",
    )
    assert p.os_caption_version("Get-CimInstance : Access denied") == (None, None)


def test_hotfix_dates_from_windows_powershell_objects() -> None:
    # PowerShell 5.1 wraps InstalledOn as {"value": "/Date(ms)/"}; null dates are skipped.
    assert p.hotfix_newest(win("hotfix-ps51.json")) == datetime(2024, 6, 12, tzinfo=UTC)


def test_a_single_hotfix_is_an_object_in_powershell_7() -> None:
    assert p.hotfix_newest(win("hotfix-ps7-single.json")) == datetime(2024, 6, 12, tzinfo=UTC)


def test_hotfix_dates_in_locale_text_are_refused_not_guessed() -> None:
    assert p.hotfix_newest(win("hotfix-locale-text.json")) is None


@pytest.mark.parametrize(
    ("file", "encrypted"),
    [
        ("manage-bde-on.txt", True),
        ("manage-bde-encrypting.txt", False),  # encryption in progress
        ("manage-bde-suspended.txt", False),  # protection off: the key is in the clear
        ("manage-bde-off.txt", False),
        ("manage-bde-denied.txt", None),  # not elevated
        ("manage-bde-german.txt", None),  # another language: not read
    ],
)
def test_bitlocker_needs_full_encryption_and_protection_on(
    file: str, encrypted: bool | None
) -> None:
    assert p.bitlocker_protected(win(file)) is encrypted


def test_firewall_on_only_when_every_profile_is_on() -> None:
    assert p.firewall_all_profiles_on(win("netsh-all-on.txt")) is True
    assert p.firewall_all_profiles_on(win("netsh-public-off.txt")) is False
    assert p.firewall_all_profiles_on("The requested operation requires elevation.") is None


def test_tasklist_names_with_and_without_a_header() -> None:
    names = p.tasklist_names(win("tasklist.csv"))
    assert names[:2] == ["System Idle Process", "System"]
    assert "Image Name" not in names
    assert "explorer.exe" in p.tasklist_names(win("tasklist-plain-nh.csv"))


def test_reg_query_values_with_dwords_as_decimal() -> None:
    values = p.reg_values(win("reg-desktop-secure.txt"))
    assert values["ScreenSaverIsSecure"] == "1"
    assert values["ScreenSaveTimeOut"] == "600"
    assert values["ActiveWndTrackTimeout"] == "0"
    assert p.reg_values(win("reg-inactivity.txt")) == {"InactivityTimeoutSecs": "900"}


def test_screen_lock_from_the_screen_saver_or_the_inactivity_limit() -> None:
    secure = p.reg_values(win("reg-desktop-secure.txt"))
    insecure = p.reg_values(win("reg-desktop-insecure.txt"))
    policy = p.reg_values(win("reg-policy-secure.txt"))
    limit = p.reg_values(win("reg-inactivity.txt"))
    assert p.screen_lock_on(desktop=secure, policy=None, inactivity=None) is True
    assert p.screen_lock_on(desktop=insecure, policy=None, inactivity=None) is False
    assert p.screen_lock_on(desktop=insecure, policy=policy, inactivity=None) is True
    assert p.screen_lock_on(desktop=None, policy=None, inactivity=limit) is True
    assert p.screen_lock_on(desktop=None, policy=None, inactivity=None) is None


PS = ("powershell.exe", "-NoProfile", "-NonInteractive", "-Command")


def test_a_windows_machine_collects_every_field_from_its_commands() -> None:
    runner = RecordedRunner(
        commands={
            (*PS, "Get-CimInstance Win32_OperatingSystem | ConvertTo-Json"): ok(
                win("cim-os-win11.json")
            ),
            (*PS, "Get-HotFix | ConvertTo-Json"): ok(win("hotfix-ps51.json")),
            ("manage-bde.exe", "-status", "C:"): ok(win("manage-bde-on.txt")),
            ("netsh.exe", "advfirewall", "show", "allprofiles", "state"): ok(
                win("netsh-public-off.txt")
            ),
            ("tasklist.exe", "/fo", "csv", "/nh"): ok(win("tasklist.csv")),
            ("reg.exe", "query", r"HKCU\Control Panel\Desktop"): ok(win("reg-desktop-secure.txt")),
        }
    )
    posture = collect_windows(runner, now=datetime(2024, 6, 20, 12, tzinfo=UTC)).posture
    assert posture.to_json() == {
        "platform": "windows",
        "os_name": "Microsoft Windows 11 Pro",
        "os_version": "10.0.22631",
        "kernel_version": "10.0.22631",
        "patch_age_days": 8,
        "disk_encrypted": True,
        "firewall_active": False,
        "edr_running": True,
        "edr_name": "CrowdStrike Falcon (CSFalconService.exe)",
        "screen_lock_enabled": True,
        "collected_at": "2024-06-20T12:00:00Z",
    }


def test_an_unelevated_windows_agent_reports_disk_encryption_as_unknown() -> None:
    runner = RecordedRunner(
        commands={("manage-bde.exe", "-status", "C:"): failed(stdout=win("manage-bde-denied.txt"))}
    )
    posture = collect_windows(runner, now=datetime(2024, 6, 20, tzinfo=UTC)).posture
    assert posture.disk_encrypted is None
    assert posture.edr_running is None  # tasklist gave nothing: not "no EDR"
