"""Device administration and the gateway's view, through the real services (SQLite)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.bus import Topic
from nevertrust.clock import FixedClock
from nevertrust.devices import (
    CertificateRefused,
    DeviceAuthority,
    DeviceView,
    InvalidDevicePolicy,
    State,
    UnknownDevice,
)

from .conftest import Enrolled


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def events(svc: Services) -> list[str]:
    with svc.uow.read() as uow:
        return [e.key for _, e in uow.changes.since(0) if e.topic is Topic.DEVICE]


def audited(svc: Services, action: Action) -> list[dict[str, Any]]:
    import json

    with svc.uow.read() as uow:
        return [
            {"actor": r.actor, "target": r.target, **json.loads(r.details)}
            for r in uow.audit.iterate()
            if r.action == action
        ]


def test_quarantine_and_release_change_state_audit_and_announce(svc: Services, enrol: Any) -> None:
    device: Enrolled = enrol()
    assert svc.devices.quarantine(device.device_id, actor="cli:root", reason="stolen") is True
    assert svc.devices.quarantine(device.device_id, actor="cli:root") is False
    quarantined = svc.devices.get(device.device_id)
    assert (quarantined.state, quarantined.reasons) == (State.QUARANTINED, ("quarantined",))
    assert svc.devices.release(device.device_id, actor="cli:root") is True
    assert svc.devices.release(device.device_id, actor="cli:root") is False
    assert svc.devices.get(device.device_id).state is State.COMPLIANT
    assert events(svc) == [device.device_id] * 3  # enrolled, quarantined, released
    assert audited(svc, Action.DEVICE_QUARANTINED) == [
        {"actor": "cli:root", "target": f"device:{device.device_id}", "reason": "stolen"}
    ]
    assert audited(svc, Action.DEVICE_RELEASED)[0]["state"] == "compliant"


def test_unknown_devices_are_named_in_the_error(svc: Services) -> None:
    for action in (svc.devices.quarantine, svc.devices.release, svc.devices.remove):
        with pytest.raises(UnknownDevice, match="dev_nope"):
            action("dev_nope", actor="cli:root")


def test_a_stricter_policy_judges_devices_again_at_once(svc: Services, enrol: Any) -> None:
    ok: Enrolled = enrol()
    no_firewall: Enrolled = enrol("bob", firewall_active=False)
    policy = svc.devices.set_policy(
        "linux", {"require_firewall": True, "min_os_version": "12.5"}, actor="cli:root"
    )
    assert policy.require_firewall and policy.min_os_version == "12.5"
    assert policy.require_disk_encryption  # untouched fields keep their values
    assert svc.devices.get(ok.device_id).state is State.COMPLIANT
    failing = svc.devices.get(no_firewall.device_id)
    assert (failing.state, failing.reasons) == (State.NONCOMPLIANT, ("firewall-off",))
    assert events(svc)[-1] == no_firewall.device_id
    assert audited(svc, Action.DEVICE_POLICY_SET)[0]["after"]["require_firewall"] is True
    svc.devices.set_policy("linux", {"require_firewall": False}, actor="cli:root")
    assert svc.devices.get(no_firewall.device_id).state is State.COMPLIANT


@pytest.mark.parametrize(
    ("platform", "change", "message"),
    [
        ("beos", {}, "platform: expected one of linux, macos, windows"),
        ("linux", {"min_os_version": "twelve"}, "min_os_version: expected a dotted number"),
        ("linux", {"max_patch_age_days": -1}, "max_patch_age_days"),
        ("linux", {"require_edr": "yes"}, "require_edr"),
        ("linux", {"require_everything": True}, "require_everything"),
    ],
)
def test_bad_policy_changes_are_refused(
    svc: Services, platform: str, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidDevicePolicy, match=message):
        svc.devices.set_policy(platform, change, actor="cli:root")


def test_every_platform_has_a_policy_before_anyone_sets_one(svc: Services) -> None:
    assert [(p.platform, p.max_patch_age_days, p.updated_at) for p in svc.devices.policies()] == [
        ("linux", 30, None),
        ("macos", 30, None),
        ("windows", 30, None),
    ]


def test_the_gateway_view_has_every_device_with_its_current_state(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    alice: Enrolled = enrol()
    bob: Enrolled = enrol("bob", disk_encrypted=False)
    svc.devices.quarantine(bob.device_id, actor="cli:root")
    views = {v.device_id: v for v in svc.devices.gateway_view()}
    alice_id = svc.directory.get_user("alice").id
    assert views[alice.device_id] == DeviceView(
        device_id=alice.device_id,
        user_id=alice_id,
        state="compliant",
        platform="linux",
        managed=True,
        last_report_at=clock.now(),
        certificate_serial=svc.devices.get(alice.device_id).certificate_serial,
    )
    assert views[alice.device_id].posture["os_version"] == "12.7"
    assert views[bob.device_id].state == "quarantined"
    clock.advance(timedelta(hours=svc.settings.devices.stale_after_hours, seconds=1))
    assert {v.state for v in svc.devices.gateway_view()} == {"noncompliant", "quarantined"}


def test_stale_devices_are_marked_and_announced(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    assert svc.devices.mark_stale() == 0
    clock.advance(timedelta(hours=svc.settings.devices.stale_after_hours, seconds=1))
    assert svc.devices.mark_stale() == 1
    assert svc.devices.mark_stale() == 0
    stored = svc.devices.get(device.device_id)
    assert (stored.state, stored.reasons) == (State.NONCOMPLIANT, ("posture-stale",))
    assert events(svc)[-1] == device.device_id


def test_the_current_certificate_proves_its_device(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    view = svc.devices.verify_client_certificate(der(device.certificate_pem), clock.now())
    assert (view.device_id, view.state) == (device.device_id, "compliant")


def test_expired_replaced_and_removed_devices_certificates_are_refused(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    hours = svc.settings.devices.certificate_hours
    with pytest.raises(CertificateRefused, match="not at"):
        svc.devices.verify_client_certificate(
            der(device.certificate_pem), clock.now() + timedelta(hours=hours, seconds=1)
        )
    clock.advance(timedelta(hours=hours * 0.9))
    renewed = svc.device_enrolment.report(device.device_id, device.soft.report(at=clock.now()))
    assert renewed.certificate is not None
    with pytest.raises(CertificateRefused, match="not device .* current certificate"):
        svc.devices.verify_client_certificate(der(device.certificate_pem), clock.now())
    svc.devices.verify_client_certificate(der(renewed.certificate.pem), clock.now())
    svc.devices.remove(device.device_id, actor="cli:root")
    with pytest.raises(CertificateRefused, match="not enrolled"):
        svc.devices.verify_client_certificate(der(renewed.certificate.pem), clock.now())


def test_one_ca_per_installation_created_once(svc: Services, enrol: Any) -> None:
    enrol()
    other = DeviceAuthority(uow=svc.uow, clock=svc.clock, master_key=svc.master_key)
    assert other.ca().certificate == svc.devices.ca().certificate
    assert len(audited(svc, Action.DEVICE_CA_CREATED)) == 1


def test_the_inventory_counts_states_and_lists_silent_devices(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    assert svc.devices.inventory().compliant_percent is None
    enrol()
    enrol()
    enrol("bob", disk_encrypted=False)
    quarantined: Enrolled = enrol("bob")
    svc.devices.quarantine(quarantined.device_id, actor="cli:root")
    report = svc.devices.inventory().to_json()
    assert report["devices"] == 4
    assert report["by_state"] == {
        "registered": 0,
        "compliant": 2,
        "noncompliant": 1,
        "quarantined": 1,
    }
    assert report["compliant_percent"] == 50.0
    assert report["stale_devices"] == []
    clock.advance(timedelta(days=2))
    report = svc.devices.inventory().to_json()
    assert report["by_state"]["compliant"] == 0
    assert len(report["stale_devices"]) == 4
    assert {s["days_silent"] for s in report["stale_devices"]} == {2}
