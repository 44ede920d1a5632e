from __future__ import annotations

from typing import Any

import pytest

from nevertrust.devices import InvalidPosture, parse_posture
from tests.soft_device import posture


def test_a_complete_posture_is_accepted_and_normalised_to_utc() -> None:
    parsed = parse_posture(posture(collected_at="2026-11-25T13:00:00+01:00"))
    assert parsed.platform == "linux"
    assert parsed.to_json()["collected_at"] == "2026-11-25T12:00:00+00:00"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (posture(platform="solaris"), "posture.platform"),
        (posture(platform="Linux"), "posture.platform"),
        (posture(disk_encrypted="yes"), "posture.disk_encrypted"),
        (posture(disk_encrypted=1), "posture.disk_encrypted"),
        (posture(patch_age_days="3"), "posture.patch_age_days"),
        (posture(patch_age_days=3.5), "posture.patch_age_days"),
        (posture(patch_age_days=-1), "posture.patch_age_days"),
        (posture(os_version=12), "posture.os_version"),
        (posture(collected_at="yesterday"), "posture.collected_at"),
        (posture(collected_at="2026-11-25T12:00:00"), "posture.collected_at"),  # no zone
        (posture(collected_at=1764072000), "posture.collected_at"),
        (posture(os_name="x" * 101), "posture.os_name"),
        ({**posture(), "root_password": "hunter2"}, "posture.root_password"),
        ({k: v for k, v in posture().items() if k != "firewall_active"}, "posture.firewall_active"),
        (["linux"], "posture"),
    ],
)
def test_a_malformed_posture_is_refused_naming_the_field(document: Any, field: str) -> None:
    with pytest.raises(InvalidPosture) as caught:
        parse_posture(document)
    assert caught.value.message.startswith(field + ":")
    assert caught.value.code == "invalid-posture"
    assert caught.value.http_status == 400


def test_the_unknown_platform_error_says_what_is_expected() -> None:
    with pytest.raises(InvalidPosture, match="'linux', 'macos' or 'windows'"):
        parse_posture(posture(platform="templeos"))


def test_null_means_the_agent_could_not_tell() -> None:
    parsed = parse_posture(posture(disk_encrypted=None, patch_age_days=None, edr_name=None))
    assert parsed.disk_encrypted is None and parsed.patch_age_days is None
