"""The device inventory report: how many devices in each state, how many comply, and which
stopped reporting. A pure function of the devices and the time, like the identity report;
the JSON names from ``DeviceInventory.to_json`` are a stable interface (docs/devices.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nevertrust.devices.compliance import current_state
from nevertrust.devices.models import DeviceRecord, Ownership, Platform, State

__all__ = ["DeviceInventory", "StaleDevice", "device_inventory"]

STORED_STATES = (State.REGISTERED, State.COMPLIANT, State.NONCOMPLIANT, State.QUARANTINED)


@dataclass(frozen=True, slots=True)
class StaleDevice:
    device_id: str
    name: str
    owner: str
    state: str
    last_report_at: datetime | None  # None: never reported
    days_silent: int  # since the last report, or since enrolment when it never reported


@dataclass(frozen=True, slots=True)
class DeviceInventory:
    generated_at: datetime
    stale_after_hours: int
    total: int
    by_state: dict[str, int]
    by_platform: dict[str, int]
    by_ownership: dict[str, int]
    stale: tuple[StaleDevice, ...]

    @property
    def compliant(self) -> int:
        return self.by_state.get(State.COMPLIANT, 0)

    @property
    def compliant_percent(self) -> float | None:
        """Compliant devices among all enrolled ones; None when there are none."""
        return None if not self.total else round(100.0 * self.compliant / self.total, 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "stale_after_hours": self.stale_after_hours,
            "devices": self.total,
            "by_state": dict(self.by_state),
            "compliant_percent": self.compliant_percent,
            "by_platform": dict(self.by_platform),
            "by_ownership": dict(self.by_ownership),
            "stale_devices": [
                {
                    "device_id": s.device_id,
                    "name": s.name,
                    "owner": s.owner,
                    "state": s.state,
                    "last_report_at": s.last_report_at.isoformat() if s.last_report_at else None,
                    "days_silent": s.days_silent,
                }
                for s in self.stale
            ],
        }


def device_inventory(
    devices: Iterable[DeviceRecord], *, now: datetime, stale_after: timedelta
) -> DeviceInventory:
    """Count ``devices`` by their state at ``now`` (staleness applied) and list the silent."""
    by_state = {str(s): 0 for s in STORED_STATES}
    by_platform = {str(p): 0 for p in Platform}
    by_ownership = {str(o): 0 for o in Ownership}
    stale: list[StaleDevice] = []
    total = 0
    for device in devices:
        total += 1
        state, _ = current_state(device, now=now, stale_after=stale_after)
        by_state[str(state)] += 1
        if device.platform is not None:
            by_platform[str(device.platform)] += 1
        by_ownership[str(device.ownership)] += 1
        seen = device.last_report_at or device.enrolled_at
        if now - seen > stale_after:
            stale.append(
                StaleDevice(
                    device_id=device.device_id,
                    name=device.name,
                    owner=device.username,
                    state=str(state),
                    last_report_at=device.last_report_at,
                    days_silent=(now - seen).days,
                )
            )
    stale.sort(key=lambda s: (s.last_report_at is not None, s.last_report_at or now, s.name))
    return DeviceInventory(
        generated_at=now,
        stale_after_hours=int(stale_after.total_seconds() // 3600),
        total=total,
        by_state=by_state,
        by_platform=by_platform,
        by_ownership=by_ownership,
        stale=tuple(stale),
    )
