"""Device administration and the gateway's view: inventory, quarantine, policies, mTLS.

Every change is audited and announced (``device`` change event, key: device id) in the
same transaction, so gateways on every replica rebuild their device view before the
admin's command returns (the CLI then pokes the local server, as elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nevertrust.audit.models import Action, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.devices.authority import DeviceAuthority
from nevertrust.devices.ca import DeviceCA
from nevertrust.devices.compliance import current_state, evaluate_compliance, state_for
from nevertrust.devices.errors import CertificateRefused, UnknownDevice
from nevertrust.devices.inventory import DeviceInventory, device_inventory
from nevertrust.devices.models import (
    CompliancePolicy,
    ComplianceReason,
    DeviceRecord,
    DeviceView,
    Platform,
    State,
)
from nevertrust.devices.policies import apply_change, parse_platform, policy_for
from nevertrust.identity.errors import UnknownUser

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["DeviceService"]

_QUARANTINED = str(ComplianceReason.QUARANTINED)


class DeviceService:
    """What admins and the gateway do with enrolled devices."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        authority: DeviceAuthority,
        stale_after: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authority = authority
        self._stale_after = stale_after

    # Reading

    def _aged(self, device: DeviceRecord, now: datetime) -> DeviceRecord:
        state, reasons = current_state(device, now=now, stale_after=self._stale_after)
        if (state, reasons) == (device.state, device.reasons):
            return device
        return replace(device, state=state, reasons=reasons)

    def list_devices(self, *, username: str | None = None) -> Sequence[DeviceRecord]:
        """Devices (of one user, if named), states aged by staleness, newest first."""
        now = self._clock.now()
        with self._uow.read() as uow:
            user_id = None
            if username is not None:
                user = uow.users.get_by_name(username)
                if user is None:
                    raise UnknownUser(f"no user named {username!r}", name=username)
                user_id = user.id
            devices = uow.devices.list(user_id=user_id)
        return [self._aged(d, now) for d in devices]

    def list_for_user(self, user_id: int) -> Sequence[DeviceRecord]:
        now = self._clock.now()
        with self._uow.read() as uow:
            return [self._aged(d, now) for d in uow.devices.list(user_id=user_id)]

    def get(self, device_id: str) -> DeviceRecord:
        with self._uow.read() as uow:
            device = self._require(uow, device_id)
        return self._aged(device, self._clock.now())

    def inventory(self) -> DeviceInventory:
        """Devices per state, share compliant, devices that stopped reporting."""
        now = self._clock.now()
        with self._uow.read() as uow:
            devices = uow.devices.list()
        return device_inventory(devices, now=now, stale_after=self._stale_after)

    def gateway_view(self) -> list[DeviceView]:
        """Every device as the gateway needs it, states aged to now."""
        now = self._clock.now()
        with self._uow.read() as uow:
            devices = uow.devices.list()
        return [self._view(d, now) for d in devices]

    def _view(self, device: DeviceRecord, now: datetime) -> DeviceView:
        aged = self._aged(device, now)
        return DeviceView(
            device_id=aged.device_id,
            user_id=aged.user_id,
            state=str(aged.state),
            platform=str(aged.platform or ""),
            managed=aged.managed,
            posture=dict(aged.posture or {}),
            last_report_at=aged.last_report_at,
            certificate_serial=aged.certificate_serial,
        )

    def ca(self) -> DeviceCA:
        """The device CA (created on first use): its certificate is the mTLS trust anchor."""
        return self._authority.ca()

    def verify_client_certificate(self, der: bytes, now: datetime) -> DeviceView:
        """The device a client certificate proves, or ``CertificateRefused``.

        Refused: not issued by our CA, outside its validity at ``now``, not a client
        certificate, or not the device's current certificate (renewed, re-issued or the
        device removed). The device's state is not judged here: the policy does that.
        """
        device_id, serial = self.ca().check_client_certificate(der, now=now)
        with self._uow.read() as uow:
            device = uow.devices.get(device_id)
        if device is None:
            raise CertificateRefused(f"device {device_id} is not enrolled (removed?)")
        if device.certificate_serial != serial:
            raise CertificateRefused(
                f"certificate {serial} is not device {device_id}'s current certificate"
            )
        return self._view(device, now)

    def policies(self) -> list[CompliancePolicy]:
        """The policy in force for every platform (stored, else the default)."""
        with self._uow.read() as uow:
            return [policy_for(uow, p) for p in Platform]

    def policy(self, platform: str) -> CompliancePolicy:
        parsed = parse_platform(platform)
        with self._uow.read() as uow:
            return policy_for(uow, parsed)

    # Changing

    def quarantine(self, device_id: str, *, actor: str, reason: str = "") -> bool:
        """Quarantine a device whatever it reports, until released. False if it already was."""
        now = self._clock.now()
        with self._uow.write() as uow:
            device = self._require(uow, device_id, lock=True)
            if device.state is State.QUARANTINED:
                return False
            reasons = (_QUARANTINED, *(r for r in device.reasons if r != _QUARANTINED))
            uow.devices.set_state(device.device_id, State.QUARANTINED, reasons, now=now)
            self._changed(
                uow, Action.DEVICE_QUARANTINED, device, actor=actor, now=now, reason=reason[:200]
            )
        return True

    def release(self, device_id: str, *, actor: str) -> bool:
        """End a quarantine; the device is judged on its last posture again."""
        now = self._clock.now()
        with self._uow.write() as uow:
            device = self._require(uow, device_id, lock=True)
            if device.state is not State.QUARANTINED:
                return False
            state, reasons = self._judge(uow, device, now=now)
            uow.devices.set_state(device.device_id, state, reasons, now=now)
            self._changed(
                uow,
                Action.DEVICE_RELEASED,
                device,
                actor=actor,
                now=now,
                state=str(state),
                reasons=list(reasons),
            )
        return True

    def remove(self, device_id: str, *, actor: str) -> DeviceRecord:
        """Forget a device: its certificate and its reports are refused from now on."""
        now = self._clock.now()
        with self._uow.write() as uow:
            device = self._require(uow, device_id, lock=True)
            uow.devices.delete(device.device_id)
            self._changed(
                uow,
                Action.DEVICE_REMOVED,
                device,
                actor=actor,
                now=now,
                name=device.name,
                owner=device.username,
                certificate_serial=device.certificate_serial,
            )
        return device

    def set_policy(
        self, platform: str, change: Mapping[str, Any], *, actor: str
    ) -> CompliancePolicy:
        """Change a platform's policy and judge its devices again, in one transaction."""
        parsed = parse_platform(platform)
        now = self._clock.now()
        with self._uow.write() as uow:
            before = policy_for(uow, parsed)
            after = apply_change(before, change)
            uow.device_policies.put(after, now=now)
            uow.audit.append(
                [
                    success(
                        Action.DEVICE_POLICY_SET,
                        ts=now,
                        actor=actor,
                        target=f"device-policy:{parsed}",
                        before=before.requirements(),
                        after=after.requirements(),
                    )
                ]
            )
            for device in uow.devices.list():
                if device.platform is parsed and device.state is not State.QUARANTINED:
                    self._rejudge(uow, device, now=now, cause=f"device-policy:{parsed}")
            stored = uow.device_policies.get(parsed)
        return stored or after

    def mark_stale(self) -> int:
        """Store ``posture-stale`` for devices that stopped reporting, announcing each.

        Views are aged when built; this makes the change visible to caches built earlier
        (a server runs it periodically). Returns how many devices changed.
        """
        now = self._clock.now()
        changed = 0
        with self._uow.write() as uow:
            for device in uow.devices.list():
                aged = self._aged(device, now)
                if (aged.state, aged.reasons) != (device.state, device.reasons):
                    uow.devices.set_state(device.device_id, aged.state, aged.reasons, now=now)
                    self._state_changed(uow, device, aged.state, aged.reasons, now, "stale")
                    changed += 1
        return changed

    # Internals

    def _judge(
        self, uow: UnitOfWork, device: DeviceRecord, *, now: datetime
    ) -> tuple[State, tuple[str, ...]]:
        """State and reasons from the stored posture under the policy in force."""
        if device.platform is None or device.posture is None:
            return State.REGISTERED, (str(ComplianceReason.POSTURE_MISSING),)
        compliant, reasons = evaluate_compliance(
            device.posture,
            policy_for(uow, device.platform),
            now=now,
            last_report_at=device.last_report_at,
            stale_after=self._stale_after,
        )
        return state_for(quarantined=False, compliant=compliant, has_posture=True), reasons

    def _rejudge(self, uow: UnitOfWork, device: DeviceRecord, *, now: datetime, cause: str) -> None:
        state, reasons = self._judge(uow, device, now=now)
        if (state, reasons) != (device.state, device.reasons):
            uow.devices.set_state(device.device_id, state, reasons, now=now)
            self._state_changed(uow, device, state, reasons, now, cause)

    def _state_changed(
        self,
        uow: UnitOfWork,
        device: DeviceRecord,
        state: State,
        reasons: tuple[str, ...],
        now: datetime,
        cause: str,
    ) -> None:
        target = f"device:{device.device_id}"
        entry = success(
            Action.DEVICE_STATE_CHANGED,
            ts=now,
            actor="system",
            target=target,
            before=str(device.state),
            after=str(state),
            reasons=list(reasons),
            cause=cause,
        )
        uow.audit.append([entry])
        uow.changes.record(ChangeEvent(Topic.DEVICE, device.device_id), now=now)

    def _changed(
        self,
        uow: UnitOfWork,
        action: Action,
        device: DeviceRecord,
        *,
        actor: str,
        now: datetime,
        **details: Any,
    ) -> None:
        target = f"device:{device.device_id}"
        uow.audit.append([success(action, ts=now, actor=actor, target=target, **details)])
        uow.changes.record(ChangeEvent(Topic.DEVICE, device.device_id), now=now)

    @staticmethod
    def _require(uow: UnitOfWork, device_id: str, *, lock: bool = False) -> DeviceRecord:
        device = uow.devices.get(device_id.strip()[:64], for_update=lock)
        if device is None:
            raise UnknownDevice(f"no device {device_id!r}", device_id=device_id)
        return device
