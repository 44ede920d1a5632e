from __future__ import annotations

import pytest

from nevertrust.domain import DeviceState
from nevertrust.pdp.conditions import Condition, device

from ._helpers import NOW, request

LAPTOP = DeviceState(
    device_id="d-1",
    compliant=True,
    managed=False,
    platform="macos",
    posture={"disk_encrypted": True, "os_major": 14},
)
CONDITIONS = {
    "compliant": device.compliant(True),
    "managed": device.managed(False),
    "platform": device.platform(["macos"]),
    "posture": device.posture({"disk_encrypted": True}),
}


@pytest.mark.parametrize("condition", CONDITIONS.values(), ids=CONDITIONS.keys())
def test_every_device_condition_is_false_for_an_unknown_device(condition: Condition) -> None:
    assert condition.test(request(), NOW) is False
    assert condition.explain(request(), NOW) == "the device is unknown (not enrolled)"


@pytest.mark.parametrize(
    ("expected", "compliant", "holds"),
    [(True, True, True), (True, False, False), (False, False, True), (False, True, False)],
)
def test_compliant_compares_with_the_expected_value(
    expected: bool, compliant: bool, holds: bool
) -> None:
    seen = request(device=DeviceState("d-1", compliant=compliant))
    assert device.compliant(expected).test(seen, NOW) is holds


@pytest.mark.parametrize(("expected", "holds"), [(False, True), (True, False)])
def test_managed_compares_with_the_expected_value(expected: bool, holds: bool) -> None:
    assert device.managed(expected).test(request(device=LAPTOP), NOW) is holds


@pytest.mark.parametrize(
    ("platforms", "holds"),
    [(["macos"], True), (["linux", "macos"], True), (["windows"], False), ([], False)],
)
def test_platform_holds_for_any_listed_platform(platforms: list[str], holds: bool) -> None:
    assert device.platform(platforms).test(request(device=LAPTOP), NOW) is holds


@pytest.mark.parametrize(
    ("fields", "holds"),
    [
        ({"disk_encrypted": True}, True),
        ({"disk_encrypted": True, "os_major": 14}, True),
        ({"disk_encrypted": False}, False),
        ({"os_major": 15}, False),
        ({"firewall": True}, False),  # a field the device does not report
        ({}, True),  # asks nothing of a known device
    ],
    ids=["one-field", "all-fields", "wrong-bool", "wrong-number", "missing-field", "empty"],
)
def test_posture_needs_every_listed_field_equal(fields: dict[str, object], holds: bool) -> None:
    assert device.posture(dict(fields)).test(request(device=LAPTOP), NOW) is holds


def test_explanations_say_expected_versus_got() -> None:
    seen = request(device=DeviceState("d-9", compliant=False, managed=False, platform="linux"))
    assert device.compliant(True).explain(seen, NOW) == "needs compliant=True; device d-9 is False"
    assert device.managed(True).explain(seen, NOW) == "needs managed=True; device is False"
    assert device.platform(["macos", "windows"]).explain(seen, NOW) == (
        "needs a platform in ['macos', 'windows']; device runs 'linux'"
    )
    laptop = request(device=LAPTOP)
    assert device.posture({"os_major": 15, "disk_encrypted": True}).explain(laptop, NOW) == (
        "posture os_major=14 (needs 15)"
    )
    assert device.posture({"firewall": True}).explain(laptop, NOW) == (
        "posture firewall=None (needs True)"
    )
