"""Repositories the device services need (implemented in ``nevertrust.store``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from nevertrust.devices.models import (
    CompliancePolicy,
    DeviceRecord,
    IssuedCertificate,
    Platform,
    State,
    StoredAuthority,
)

__all__ = [
    "DeviceAuthorityRepository",
    "DevicePolicyRepository",
    "DeviceRepository",
    "DeviceTokenRepository",
]


class DeviceRepository(Protocol):
    def insert(self, record: DeviceRecord) -> None: ...

    def get(self, device_id: str, *, for_update: bool = False) -> DeviceRecord | None:
        """One device; ``for_update`` also locks its row until the transaction ends."""
        ...

    def list(self, *, user_id: int | None = None) -> Sequence[DeviceRecord]:
        """Devices with their owner's name, newest enrolment first."""
        ...

    def accept_report(
        self,
        device_id: str,
        *,
        posture: Mapping[str, Any],
        iat: int,
        jti: str,
        state: State,
        reasons: tuple[str, ...],
        now: datetime,
        certificate: IssuedCertificate | None,
    ) -> bool:
        """Store a verified report only if its ``iat`` is newer than the last one stored.

        The condition is part of the UPDATE, so of two replicas accepting the same report
        at once exactly one succeeds; False means the other got there first (a replay).
        """
        ...

    def set_state(
        self, device_id: str, state: State, reasons: tuple[str, ...], *, now: datetime
    ) -> None: ...

    def spend_bind_proof(self, device_id: str, iat: int) -> bool:
        """Record a browser-binding proof's ``iat`` if newer than the last one spent.

        A conditional UPDATE, like ``accept_report``: False means a proof this old (or
        this very proof) was already used, so each proof binds one browser, once.
        """
        ...

    def delete(self, device_id: str) -> bool: ...


class DeviceTokenRepository(Protocol):
    def insert(self, *, token_hash: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        """Store a token (and drop expired ones: they serve no purpose)."""
        ...

    def redeem(self, token_hash: str, *, now: datetime) -> int | None:
        """Delete an unexpired token and return its user id; None if there was none.

        One conditional DELETE: of two enrolments racing with one token, one wins.
        """
        ...


class DevicePolicyRepository(Protocol):
    def get(self, platform: Platform) -> CompliancePolicy | None: ...

    def list(self) -> Sequence[CompliancePolicy]: ...

    def put(self, policy: CompliancePolicy, *, now: datetime) -> None: ...


class DeviceAuthorityRepository(Protocol):
    def lock(self) -> None:
        """Serialise CA creation across processes until the transaction ends."""

    def get(self) -> StoredAuthority | None: ...

    def insert(self, authority: StoredAuthority) -> None: ...
