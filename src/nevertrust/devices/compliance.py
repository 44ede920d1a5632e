"""Compliance: what a posture and a platform policy make of a device. Pure functions.

Rules (docs/devices.md):
- A requirement the posture cannot answer (the agent sent ``null``, or an OS version with
  no leading number) is ``posture-missing``: undetermined is noncompliant, never fine.
- A posture older than ``stale_after`` is ``posture-stale``: a device that stopped
  reporting cannot stay compliant on what it said long ago.
- Quarantine wins over everything: a quarantined device is noncompliant whatever it says.
- Requirements only ever add reasons, so a stricter policy never makes a device compliant
  that a looser one found noncompliant (tests/unit/devices/test_compliance.py checks this
  with hypothesis).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from nevertrust.devices.models import (
    CompliancePolicy,
    ComplianceReason,
    DeviceRecord,
    Platform,
    State,
)
from nevertrust.devices.versions import version_at_least

__all__ = [
    "DEFAULT_MAX_PATCH_AGE_DAYS",
    "current_state",
    "default_policy",
    "evaluate_compliance",
    "is_stale",
    "state_for",
]

DEFAULT_MAX_PATCH_AGE_DAYS = 30
_ORDER: dict[str, int] = {str(reason): index for index, reason in enumerate(ComplianceReason)}
_ORDER[ComplianceReason.QUARANTINED] = -1  # shown first: it explains everything else

# Boolean requirements: (policy flag, posture field, reason when the field is false).
_SWITCHES = (
    ("require_disk_encryption", "disk_encrypted", ComplianceReason.DISK_NOT_ENCRYPTED),
    ("require_firewall", "firewall_active", ComplianceReason.FIREWALL_OFF),
    ("require_edr", "edr_running", ComplianceReason.EDR_MISSING),
    ("require_screen_lock", "screen_lock_enabled", ComplianceReason.SCREEN_LOCK_OFF),
)


def default_policy(platform: Platform) -> CompliancePolicy:
    """The policy a platform has until an admin sets one: encrypted disk, patches < 30 days."""
    return CompliancePolicy(
        platform=platform,
        max_patch_age_days=DEFAULT_MAX_PATCH_AGE_DAYS,
        require_disk_encryption=True,
    )


def is_stale(last_report_at: datetime | None, *, now: datetime, stale_after: timedelta) -> bool:
    return last_report_at is None or now - last_report_at > stale_after


def _os_reasons(posture: Mapping[str, Any], policy: CompliancePolicy) -> set[ComplianceReason]:
    if policy.min_os_version is None:
        return set()
    version = posture.get("os_version")
    if not isinstance(version, str):
        return {ComplianceReason.POSTURE_MISSING}
    new_enough = version_at_least(version, policy.min_os_version)
    if new_enough is None:
        return {ComplianceReason.POSTURE_MISSING}
    return set() if new_enough else {ComplianceReason.OS_TOO_OLD}


def _patch_reasons(posture: Mapping[str, Any], policy: CompliancePolicy) -> set[ComplianceReason]:
    if policy.max_patch_age_days is None:
        return set()
    age = posture.get("patch_age_days")
    if not isinstance(age, int) or isinstance(age, bool):
        return {ComplianceReason.POSTURE_MISSING}
    return {ComplianceReason.PATCHES_STALE} if age > policy.max_patch_age_days else set()


def evaluate_compliance(
    posture: Mapping[str, Any] | None,
    policy: CompliancePolicy,
    *,
    now: datetime,
    last_report_at: datetime | None,
    stale_after: timedelta,
    quarantined: bool = False,
) -> tuple[bool, tuple[str, ...]]:
    """Whether a device with ``posture`` complies with ``policy`` at ``now``, and why not.

    ``posture`` is the validated document as JSON values (``Posture.to_json()`` or what was
    stored); ``last_report_at`` is when it was accepted. Reasons are ``ComplianceReason``
    values, each at most once, quarantine first; compliant exactly when there are none.
    """
    reasons: set[ComplianceReason] = set()
    if quarantined:
        reasons.add(ComplianceReason.QUARANTINED)
    if posture is None:
        reasons.add(ComplianceReason.POSTURE_MISSING)
    else:
        if is_stale(last_report_at, now=now, stale_after=stale_after):
            reasons.add(ComplianceReason.POSTURE_STALE)
        reasons |= _os_reasons(posture, policy)
        reasons |= _patch_reasons(posture, policy)
        for flag, field, reason in _SWITCHES:
            if getattr(policy, flag):
                value = posture.get(field)
                if not isinstance(value, bool):
                    reasons.add(ComplianceReason.POSTURE_MISSING)
                elif not value:
                    reasons.add(reason)
    ordered = tuple(str(r) for r in sorted(reasons, key=lambda r: _ORDER[r]))
    return not ordered, ordered


def state_for(*, quarantined: bool, compliant: bool, has_posture: bool) -> State:
    """The stored state: quarantine first, then whether any posture is known at all."""
    if quarantined:
        return State.QUARANTINED
    if not has_posture:
        return State.REGISTERED
    return State.COMPLIANT if compliant else State.NONCOMPLIANT


def current_state(
    device: DeviceRecord, *, now: datetime, stale_after: timedelta
) -> tuple[State, tuple[str, ...]]:
    """The stored state and reasons, aged: a compliant device that stopped reporting is
    noncompliant with ``posture-stale`` from the moment its posture is too old."""
    if device.state in (State.QUARANTINED, State.REGISTERED):
        return device.state, device.reasons
    if not is_stale(device.last_report_at, now=now, stale_after=stale_after):
        return device.state, device.reasons
    stale = str(ComplianceReason.POSTURE_STALE)
    reasons = device.reasons if stale in device.reasons else (*device.reasons, stale)
    ordered = tuple(sorted(reasons, key=lambda r: _ORDER.get(r, 99)))
    return State.NONCOMPLIANT, ordered
