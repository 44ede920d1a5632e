"""This Linux machine's real posture, as the agent reads it (commands and files, no fakes)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

from nevertrust.agent import collect_posture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_os_and_kernel_are_this_machines() -> None:
    release = platform.freedesktop_os_release()
    posture = collect_posture().posture
    assert posture.platform == "linux"
    assert posture.os_name == release["NAME"]
    assert posture.os_version == release.get("VERSION_ID", release.get("BUILD_ID"))
    assert posture.kernel_version == os.uname().release


def test_every_unknown_field_says_why() -> None:
    collected = collect_posture()
    for field in (
        "patch_age_days",
        "disk_encrypted",
        "firewall_active",
        "edr_running",
        "screen_lock_enabled",
    ):
        # How it was found, or why it is null: printed by `nevertrust agent posture`.
        assert collected.notes.get(field), f"{field} has no note"


def test_patch_age_is_known_where_the_package_logs_record_upgrades() -> None:
    logs = [Path("/var/log/apt/history.log"), Path("/var/log/dpkg.log")]
    upgraded = any(
        p.exists()
        and (
            "Upgrade:" in p.read_text(errors="replace")
            or " upgrade " in p.read_text(errors="replace")
        )
        for p in logs
    )
    if not upgraded:
        pytest.skip("this machine's package logs record no upgrade")
    age = collect_posture().posture.patch_age_days
    assert age is not None and age >= 0


def test_a_headless_machine_has_no_screen_lock_to_report() -> None:
    comms = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comms.append((entry / "comm").read_text().strip())
            except OSError:
                continue
    if "gnome-shell" in comms:
        pytest.skip("a GNOME session runs here")
    assert collect_posture().posture.screen_lock_enabled is None


def test_collecting_twice_agrees() -> None:
    one, two = collect_posture().posture.to_json(), collect_posture().posture.to_json()
    one.pop("collected_at"), two.pop("collected_at")
    assert one == two
