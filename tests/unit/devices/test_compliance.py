"""Compliance evaluation: the reasons table, and properties that must hold for any input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nevertrust.devices.compliance import (
    current_state,
    default_policy,
    evaluate_compliance,
    state_for,
)
from nevertrust.devices.models import (
    CompliancePolicy,
    DeviceRecord,
    Ownership,
    Platform,
    State,
)
from tests.soft_device import posture

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
STRICT = CompliancePolicy(
    platform=Platform.LINUX,
    min_os_version="12.5",
    max_patch_age_days=14,
    require_disk_encryption=True,
    require_firewall=True,
    require_edr=True,
    require_screen_lock=True,
)
GOOD = posture(edr_running=True, edr_name="falcon-sensor", screen_lock_enabled=True)


def evaluate(
    document: dict[str, Any] | None,
    policy: CompliancePolicy = STRICT,
    *,
    reported: datetime | None = NOW,
    quarantined: bool = False,
) -> tuple[bool, tuple[str, ...]]:
    return evaluate_compliance(
        document, policy, now=NOW, last_report_at=reported, stale_after=DAY, quarantined=quarantined
    )


def test_a_device_meeting_every_requirement_is_compliant_with_no_reasons() -> None:
    assert evaluate(GOOD) == (True, ())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"os_version": "12.4"}, "os-too-old"),
        ({"os_version": "11"}, "os-too-old"),
        ({"patch_age_days": 15}, "patches-stale"),
        ({"disk_encrypted": False}, "disk-not-encrypted"),
        ({"firewall_active": False}, "firewall-off"),
        ({"edr_running": False}, "edr-missing"),
        ({"screen_lock_enabled": False}, "screen-lock-off"),
        ({"os_version": "unknown"}, "posture-missing"),
        ({"patch_age_days": None}, "posture-missing"),
        ({"disk_encrypted": None}, "posture-missing"),
        ({"firewall_active": None}, "posture-missing"),
        ({"edr_running": None}, "posture-missing"),
        ({"screen_lock_enabled": None}, "posture-missing"),
    ],
)
def test_each_failed_requirement_gives_its_reason(change: dict[str, Any], reason: str) -> None:
    assert evaluate({**GOOD, **change}) == (False, (reason,))


def test_boundaries_are_inclusive() -> None:
    assert evaluate({**GOOD, "os_version": "12.5.0", "patch_age_days": 14}) == (True, ())


def test_an_old_posture_is_stale_and_a_missing_one_is_missing() -> None:
    assert evaluate(GOOD, reported=NOW - DAY - timedelta(seconds=1)) == (False, ("posture-stale",))
    assert evaluate(GOOD, reported=NOW - DAY) == (True, ())
    assert evaluate(None) == (False, ("posture-missing",))


def test_reasons_come_once_each_in_a_fixed_order_with_quarantine_first() -> None:
    document = {**GOOD, "disk_encrypted": False, "patch_age_days": None, "edr_running": None}
    assert evaluate(document, quarantined=True) == (
        False,
        ("quarantined", "disk-not-encrypted", "posture-missing"),
    )


def test_unrequired_fields_are_not_judged_even_when_unknown() -> None:
    lenient = CompliancePolicy(platform=Platform.LINUX)
    assert evaluate(posture(os_version="?", patch_age_days=None, disk_encrypted=None), lenient) == (
        True,
        (),
    )


def test_the_default_policy_wants_an_encrypted_disk_and_patches_within_30_days() -> None:
    policy = default_policy(Platform.MACOS)
    assert policy.require_disk_encryption and policy.max_patch_age_days == 30
    assert not (policy.require_firewall or policy.require_edr or policy.require_screen_lock)
    assert policy.min_os_version is None


# Properties over arbitrary postures and policies.

maybe_bool = st.one_of(st.none(), st.booleans())
postures = st.fixed_dictionaries(
    {
        "platform": st.just("linux"),
        "os_name": st.just("Debian"),
        "os_version": st.one_of(
            st.just("unknown"),
            st.lists(st.integers(0, 30), min_size=1, max_size=3).map(
                lambda p: ".".join(map(str, p))
            ),
        ),
        "kernel_version": st.just("6.1"),
        "patch_age_days": st.one_of(st.none(), st.integers(0, 400)),
        "disk_encrypted": maybe_bool,
        "firewall_active": maybe_bool,
        "edr_running": maybe_bool,
        "edr_name": st.none(),
        "screen_lock_enabled": maybe_bool,
        "collected_at": st.just("2026-11-25T11:00:00Z"),
    }
)
policies = st.builds(
    CompliancePolicy,
    platform=st.just(Platform.LINUX),
    min_os_version=st.one_of(st.none(), st.sampled_from(["10", "12", "12.7", "20.1.3"])),
    max_patch_age_days=st.one_of(st.none(), st.integers(0, 365)),
    require_disk_encryption=st.booleans(),
    require_firewall=st.booleans(),
    require_edr=st.booleans(),
    require_screen_lock=st.booleans(),
)
reported = st.one_of(st.none(), st.integers(0, 3 * 86400).map(lambda s: NOW - timedelta(seconds=s)))


def stricter(policy: CompliancePolicy, data: st.DataObject) -> CompliancePolicy:
    """The same policy with one more (or a tighter) requirement."""
    field = data.draw(
        st.sampled_from(
            [
                "min_os_version",
                "max_patch_age_days",
                "require_disk_encryption",
                "require_firewall",
                "require_edr",
                "require_screen_lock",
            ]
        )
    )
    if field == "min_os_version":
        current = policy.min_os_version or "0"
        return replace(policy, min_os_version=f"{current}.{data.draw(st.integers(1, 9))}")
    if field == "max_patch_age_days":
        current = policy.max_patch_age_days if policy.max_patch_age_days is not None else 400
        return replace(policy, max_patch_age_days=data.draw(st.integers(0, current)))
    return replace(policy, **{field: True})


@settings(deadline=None)  # no timing assertions on a shared machine
@given(postures, policies, reported, st.data())
def test_adding_a_requirement_never_turns_noncompliant_into_compliant(
    document: dict[str, Any], policy: CompliancePolicy, at: datetime | None, data: st.DataObject
) -> None:
    loose, loose_reasons = evaluate(document, policy, reported=at)
    strict, strict_reasons = evaluate(document, stricter(policy, data), reported=at)
    if not loose:
        assert not strict
    assert set(loose_reasons) <= set(strict_reasons)


@settings(deadline=None)  # no timing assertions on a shared machine
@given(st.one_of(st.none(), postures), policies, reported)
def test_quarantine_always_wins(
    document: dict[str, Any] | None, policy: CompliancePolicy, at: datetime | None
) -> None:
    compliant, reasons = evaluate(document, policy, reported=at, quarantined=True)
    assert not compliant
    assert reasons[0] == "quarantined"
    assert state_for(quarantined=True, compliant=True, has_posture=True) is State.QUARANTINED


@settings(deadline=None)  # no timing assertions on a shared machine
@given(st.one_of(st.none(), postures), policies, reported)
def test_compliant_exactly_when_there_is_no_reason(
    document: dict[str, Any] | None, policy: CompliancePolicy, at: datetime | None
) -> None:
    compliant, reasons = evaluate(document, policy, reported=at)
    assert compliant == (reasons == ())
    assert len(set(reasons)) == len(reasons)


@settings(deadline=None)  # no timing assertions on a shared machine
@given(postures, policies)
def test_an_undetermined_required_field_is_never_fine(
    document: dict[str, Any], policy: CompliancePolicy
) -> None:
    unknown = {k: (None if isinstance(v, bool) else v) for k, v in document.items()}
    unknown["patch_age_days"] = None
    unknown["os_version"] = "unknown"
    compliant, reasons = evaluate(unknown, policy)
    requires_any = (
        policy.min_os_version is not None
        or policy.max_patch_age_days is not None
        or policy.require_disk_encryption
        or policy.require_firewall
        or policy.require_edr
        or policy.require_screen_lock
    )
    assert compliant is not requires_any
    assert reasons == (("posture-missing",) if requires_any else ())


def device(state: State, reasons: tuple[str, ...], last: datetime | None) -> DeviceRecord:
    return DeviceRecord(
        device_id="dev_x",
        user_id=1,
        name="laptop",
        platform=Platform.LINUX,
        ownership=Ownership.MANAGED,
        state=state,
        reasons=reasons,
        public_key_pem="",
        certificate_serial="1",
        certificate_expires_at=NOW + DAY,
        enrolled_at=NOW - 10 * DAY,
        posture=GOOD,
        last_report_at=last,
    )


def test_a_compliant_device_that_stops_reporting_turns_noncompliant_when_stale() -> None:
    fresh = device(State.COMPLIANT, (), NOW - DAY)
    assert current_state(fresh, now=NOW, stale_after=DAY) == (State.COMPLIANT, ())
    silent = device(State.COMPLIANT, (), NOW - DAY - timedelta(minutes=1))
    assert current_state(silent, now=NOW, stale_after=DAY) == (
        State.NONCOMPLIANT,
        ("posture-stale",),
    )
    failing = device(State.NONCOMPLIANT, ("firewall-off",), NOW - 3 * DAY)
    assert current_state(failing, now=NOW, stale_after=DAY) == (
        State.NONCOMPLIANT,
        ("firewall-off", "posture-stale"),
    )


def test_quarantined_and_registered_devices_do_not_age() -> None:
    quarantined = device(State.QUARANTINED, ("quarantined",), NOW - 9 * DAY)
    assert current_state(quarantined, now=NOW, stale_after=DAY) == (
        State.QUARANTINED,
        ("quarantined",),
    )
