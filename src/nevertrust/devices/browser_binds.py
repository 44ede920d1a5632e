"""Spending a browser-binding proof: the server side of ``nevertrust agent bind-browser``.

``browser_binding`` checks a proof's signature, purpose and age as a pure function. This
service adds what needs storage: the device exists, belongs to the signed-in person and is
not quarantined (a quarantined device gains no new browsers), and the proof is spent once
(its ``iat`` must be newer than the last spent one, in a conditional UPDATE, so two
replicas given the same link cannot both accept it). Every outcome is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.clock import Clock
from nevertrust.devices.browser_binding import proof_device_id, verify_bind_proof
from nevertrust.devices.errors import BindProofRefused
from nevertrust.devices.models import DeviceRecord, State
from nevertrust.identity.models import UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["BrowserBinding"]

_USED = "this link was already used: run 'nevertrust agent bind-browser' again"


class BrowserBinding:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, window: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._window = window

    def preview(self, user: UserRecord, proof: str) -> DeviceRecord:
        """The device a proof would bind this person's browser to; nothing is spent.

        For the page that asks "bind this browser to <device>?": the same checks as
        ``spend``; a link already used is refused here too, though only the spending
        write can settle two browsers racing with one link.
        """
        with self._uow.read() as uow:
            device, _ = self._check(uow, user, proof)
        return device

    def spend(self, user: UserRecord, proof: str, *, source_ip: str = "") -> DeviceRecord:
        """Accept a proof once; the caller then registers the platform passkey.

        Raises ``BindProofRefused`` after recording the refusal.
        """
        now = self._clock.now()
        refusal: BindProofRefused | None = None
        device: DeviceRecord | None = None
        with self._uow.write() as uow:
            try:
                device, iat = self._check(uow, user, proof)
                if not uow.devices.spend_bind_proof(device.device_id, iat):
                    raise BindProofRefused(_USED)
                _audit(uow, user, device.device_id, Outcome.SUCCESS, source_ip, "", now)
            except BindProofRefused as exc:
                refusal = exc
                target = device.device_id if device is not None else _named(proof)
                _audit(uow, user, target, Outcome.FAILURE, source_ip, exc.message, now)
        if refusal is not None:
            raise refusal
        assert device is not None  # noqa: S101 - set above unless refused
        return device

    def _check(self, uow: UnitOfWork, user: UserRecord, proof: str) -> tuple[DeviceRecord, int]:
        device = uow.devices.get(proof_device_id(proof))
        if device is None or device.user_id != user.id:
            # One answer for "no such device" and "someone else's": ids are not probed.
            raise BindProofRefused(
                "the link names no device of yours: run 'nevertrust agent bind-browser' on "
                "a device enrolled for the account you are signed in with"
            )
        if device.state is State.QUARANTINED:
            raise BindProofRefused(
                f"device {device.name!r} is quarantined: no browser can be bound to it"
            )
        key = serialization.load_pem_public_key(device.public_key_pem.encode("ascii"))
        if not isinstance(key, ec.EllipticCurvePublicKey):  # enrolment stores only P-256
            raise BindProofRefused("the device's stored key is not an EC key")
        iat = verify_bind_proof(
            proof,
            device_id=device.device_id,
            public_key=key,
            now=self._clock.now(),
            window=self._window,
        )
        if device.last_bind_iat is not None and iat <= device.last_bind_iat:
            # Also on the page that offers the button, so an old link says so at once;
            # ``spend`` decides races with its conditional update.
            raise BindProofRefused(_USED)
        return device, iat


def _audit(
    uow: UnitOfWork,
    user: UserRecord,
    device_id: str,
    outcome: Outcome,
    source_ip: str,
    refusal: str,
    now: datetime,
) -> None:
    uow.audit.append(
        [
            AuditEntry(
                ts=now,
                actor=f"user:{user.name}",
                action=Action.DEVICE_BROWSER_BIND,
                outcome=outcome,
                target=f"device:{device_id}",
                source=source_ip,
                reason=BindProofRefused.code if refusal else "",
                details={"detail": refusal} if refusal else {},
            )
        ]
    )


def _named(proof: str) -> str:
    try:
        return proof_device_id(proof)
    except BindProofRefused:
        return "unknown"
