"""The device CA's lifecycle: created on first use, stored sealed, loaded once per process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.audit.models import Action, success
from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey
from nevertrust.devices.ca import DeviceCA
from nevertrust.devices.models import StoredAuthority

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = ["DeviceAuthority"]

_PURPOSE = "device-ca-key"


class DeviceAuthority:
    """Hands out the one device CA of this installation, creating it the first time.

    Two processes starting at once must not create two CAs (each would refuse the other's
    certificates): creation happens under a lock in a write transaction that first looks
    again. The CA never changes afterwards, so each process keeps it once loaded.
    """

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, master_key: MasterKey) -> None:
        self._uow = uow
        self._clock = clock
        self._master = master_key
        self._ca: DeviceCA | None = None
        self._lock = threading.Lock()

    def ca(self) -> DeviceCA:
        with self._lock:
            if self._ca is None:
                self._ca = self._load(self._stored() or self._create())
            return self._ca

    def _stored(self) -> StoredAuthority | None:
        with self._uow.read() as uow:
            return uow.device_authority.get()

    def _create(self) -> StoredAuthority:
        fresh = DeviceCA.create(clock=self._clock)  # key generation outside the transaction
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.device_authority.lock()
            existing = uow.device_authority.get()
            if existing is not None:
                return existing  # another process created it first
            stored = StoredAuthority(
                certificate_pem=fresh.certificate_pem,
                private_key_enc=self._master.encrypt(fresh.private_key_pem(), purpose=_PURPOSE),
            )
            uow.device_authority.insert(stored)
            serial = format(fresh.certificate.serial_number, "x")
            uow.audit.append(
                [
                    success(
                        Action.DEVICE_CA_CREATED,
                        ts=now,
                        actor="system",
                        target=f"device-ca:{serial}",
                        expires_at=fresh.certificate.not_valid_after_utc.isoformat(),
                    )
                ]
            )
            return stored

    def _load(self, stored: StoredAuthority) -> DeviceCA:
        cert = x509.load_pem_x509_certificate(stored.certificate_pem.encode())
        pem = self._master.decrypt(stored.private_key_enc, purpose=_PURPOSE)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover - we wrote it
            raise TypeError("the stored device CA key is not an EC key")
        return DeviceCA(certificate=cert, private_key=key, clock=self._clock)
