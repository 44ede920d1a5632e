"""Device trust records and vocabularies.

The string values of ``State``, ``ComplianceReason``, ``Ownership`` and ``Platform`` are a
stable interface: the API, ``devices list --json``, audit records and the gateway's view
all carry them (docs/devices.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "CompliancePolicy",
    "ComplianceReason",
    "DeviceRecord",
    "DeviceView",
    "EnrolmentToken",
    "IssuedCertificate",
    "Ownership",
    "Platform",
    "State",
    "StoredAuthority",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class State(StrEnum):
    """A stored device's trust state. A request without a device is ``unknown``."""

    REGISTERED = "registered"  # enrolled, no posture known yet
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    QUARANTINED = "quarantined"  # set by an admin; overrides everything until released
    UNKNOWN = "unknown"  # never stored: what the gateway calls a request with no device


class ComplianceReason(StrEnum):
    OS_TOO_OLD = "os-too-old"
    PATCHES_STALE = "patches-stale"
    DISK_NOT_ENCRYPTED = "disk-not-encrypted"
    FIREWALL_OFF = "firewall-off"
    EDR_MISSING = "edr-missing"
    SCREEN_LOCK_OFF = "screen-lock-off"
    POSTURE_STALE = "posture-stale"
    # A field the policy needs that the agent could not determine: never assumed fine.
    POSTURE_MISSING = "posture-missing"
    QUARANTINED = "quarantined"


class Ownership(StrEnum):
    """The BYOD class, seen by policies as ``device.managed``."""

    MANAGED = "managed"
    PERSONAL = "personal"


class Platform(StrEnum):
    LINUX = "linux"
    MACOS = "macos"
    WINDOWS = "windows"


@dataclass(frozen=True, slots=True)
class CompliancePolicy:
    """What a device of ``platform`` must show to be compliant. ``None``: not required."""

    platform: Platform
    min_os_version: str | None = None
    max_patch_age_days: int | None = None
    require_disk_encryption: bool = False
    require_firewall: bool = False
    require_edr: bool = False
    require_screen_lock: bool = False
    updated_at: datetime | None = field(default=None, compare=False)  # None: the default

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``devices policy show --json`` and the API."""
        return {
            "platform": str(self.platform),
            **self.requirements(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    def requirements(self) -> dict[str, Any]:
        """The policy's requirements as JSON-ready values (what is stored and shown)."""
        return {
            "min_os_version": self.min_os_version,
            "max_patch_age_days": self.max_patch_age_days,
            "require_disk_encryption": self.require_disk_encryption,
            "require_firewall": self.require_firewall,
            "require_edr": self.require_edr,
            "require_screen_lock": self.require_screen_lock,
        }


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as stored: who owns it, its key, its current certificate, its last posture."""

    device_id: str
    user_id: int
    name: str
    platform: Platform | None  # None until the first posture says
    ownership: Ownership
    state: State
    reasons: tuple[str, ...]
    public_key_pem: str
    certificate_serial: str  # lower-case hex of the current certificate's serial
    certificate_expires_at: datetime
    enrolled_at: datetime
    posture: Mapping[str, Any] | None = None
    last_report_at: datetime | None = None  # when the posture in force was accepted
    last_report_iat: int | None = None  # newest signed report's iat (replay guard)
    last_report_jti: str | None = None
    last_bind_iat: int | None = None  # newest browser-binding proof spent (replay guard)
    username: str = ""  # the owner's name, filled in by listings
    browsers: int = 0  # passkeys registered as this device's (bound browsers), by listings

    @property
    def managed(self) -> bool:
        return self.ownership is Ownership.MANAGED

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``devices list --json`` and ``GET /api/v1/devices``."""
        return {
            "device_id": self.device_id,
            "name": self.name,
            "user": self.username,
            "platform": None if self.platform is None else str(self.platform),
            "ownership": str(self.ownership),
            "managed": self.managed,
            "state": str(self.state),
            "compliant": self.state is State.COMPLIANT,
            "reasons": list(self.reasons),
            "enrolled_at": self.enrolled_at.isoformat(),
            "last_report_at": self.last_report_at.isoformat() if self.last_report_at else None,
            "certificate_serial": self.certificate_serial,
            "certificate_expires_at": self.certificate_expires_at.isoformat(),
            "posture": None if self.posture is None else dict(self.posture),
            "browsers": self.browsers,
        }


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device as the gateway sees it (rebuilt on every ``device`` change event).

    ``state`` already accounts for staleness at the time the view was built; a gateway
    that keeps a view for long should also compare ``last_report_at`` with the stale limit.
    """

    device_id: str
    user_id: int
    state: str
    platform: str
    managed: bool
    posture: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False)
    last_report_at: datetime | None = None
    certificate_serial: str = ""


@dataclass(frozen=True, slots=True)
class EnrolmentToken:
    """A freshly created one-time token: the plaintext exists only in this object."""

    token: str
    username: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    pem: str
    serial: str  # lower-case hex
    not_after: datetime


@dataclass(frozen=True, slots=True)
class StoredAuthority:
    """The device CA as stored: certificate in clear, private key sealed."""

    certificate_pem: str
    private_key_enc: bytes
