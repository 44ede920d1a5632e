"""The posture document as sent: every field present, lengths the server accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from nevertrust.agent import Posture

CONTRACT_FIELDS = {
    "platform",
    "os_name",
    "os_version",
    "kernel_version",
    "patch_age_days",
    "disk_encrypted",
    "firewall_active",
    "edr_running",
    "edr_name",
    "screen_lock_enabled",
    "collected_at",
}


def posture(**changes: object) -> Posture:
    values: dict[str, object] = {
        "platform": "linux",
        "os_name": "Debian GNU/Linux",
        "os_version": "12",
        "kernel_version": "6.1.0",
        "patch_age_days": 3,
        "disk_encrypted": None,
        "firewall_active": None,
        "edr_running": False,
        "edr_name": None,
        "screen_lock_enabled": None,
        "collected_at": datetime(2026, 11, 25, 13, 0, 5, 123456, tzinfo=UTC),
    }
    values.update(changes)
    return Posture(**values)  # type: ignore[arg-type]


def test_every_contract_field_is_sent_and_unknowns_are_null() -> None:
    data = posture().to_json()
    assert set(data) == CONTRACT_FIELDS
    assert data["disk_encrypted"] is None and data["screen_lock_enabled"] is None
    assert data["collected_at"] == "2026-11-25T13:00:05Z"


def test_long_strings_are_cut_to_what_the_server_accepts() -> None:
    data = posture(os_name="x" * 500, kernel_version="k" * 500, edr_name="e" * 500).to_json()
    assert (len(data["os_name"]), len(data["kernel_version"]), len(data["edr_name"])) == (
        100,
        200,
        100,
    )


def test_patch_age_stays_within_the_servers_range() -> None:
    assert posture(patch_age_days=-3).to_json()["patch_age_days"] == 0
    assert posture(patch_age_days=10**6).to_json()["patch_age_days"] == 36_500
