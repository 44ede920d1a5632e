"""What the agent collects, keeps and is told.

``Posture`` is the document of the device contract (docs/agent.md): every field is present,
and a field the agent could not determine is ``None`` (JSON ``null``), never a guess that
would read as "fine". ``Collected`` adds the notes that say how each field was found,
printed by ``nevertrust agent posture`` and never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "AgentState",
    "Collected",
    "Enrolment",
    "Posture",
    "ReportOutcome",
    "iso",
    "parse_iso",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})

# The server refuses longer strings (devices/posture.py); cut rather than be refused.
_LIMITS = {"os_name": 100, "os_version": 64, "kernel_version": 200, "edr_name": 100}
_MAX_PATCH_AGE = 36_500


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z``, to the second."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cut(name: str, value: str | None) -> str | None:
    return None if value is None else value[: _LIMITS[name]]


@dataclass(frozen=True, slots=True)
class Posture:
    platform: str  # linux | macos | windows
    os_name: str
    os_version: str
    kernel_version: str
    patch_age_days: int | None
    disk_encrypted: bool | None
    firewall_active: bool | None
    edr_running: bool | None
    edr_name: str | None
    screen_lock_enabled: bool | None
    collected_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object, with strings cut to the lengths the server accepts."""
        age = self.patch_age_days
        return {
            "platform": self.platform,
            "os_name": _cut("os_name", self.os_name),
            "os_version": _cut("os_version", self.os_version),
            "kernel_version": _cut("kernel_version", self.kernel_version),
            "patch_age_days": None if age is None else max(0, min(age, _MAX_PATCH_AGE)),
            "disk_encrypted": self.disk_encrypted,
            "firewall_active": self.firewall_active,
            "edr_running": self.edr_running,
            "edr_name": _cut("edr_name", self.edr_name),
            "screen_lock_enabled": self.screen_lock_enabled,
            "collected_at": iso(self.collected_at),
        }


@dataclass(frozen=True, slots=True)
class Collected:
    """A posture and, per field, how it was determined (or why it could not be)."""

    posture: Posture
    notes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the server answered to an enrolment (HTTP 201)."""

    device_id: str
    certificate: str
    ca_certificate: str
    certificate_expires_at: datetime | None
    report_interval_seconds: int
    state: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What the server answered to a signed report (HTTP 200)."""

    state: str
    compliant: bool
    reasons: tuple[str, ...]
    certificate: str | None
    certificate_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class AgentState:
    """``state.json``: the contract's fields plus what the agent needs to carry on.

    ``last_iat`` keeps each report's ``iat`` strictly newer than the last one sent, which the
    server requires (two reports in one second would otherwise look like a replay).
    """

    server: str
    device_id: str
    state: str
    reasons: tuple[str, ...] = ()
    last_report_at: datetime | None = None
    ownership: str = "managed"
    enrolled_at: datetime | None = None
    report_interval_seconds: int = 300
    certificate_expires_at: datetime | None = None
    ca_file: str | None = None
    last_iat: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else iso(moment)

        return {
            "server": self.server,
            "device_id": self.device_id,
            "last_report_at": when(self.last_report_at),
            "state": self.state,
            "reasons": list(self.reasons),
            "ownership": self.ownership,
            "enrolled_at": when(self.enrolled_at),
            "report_interval_seconds": self.report_interval_seconds,
            "certificate_expires_at": when(self.certificate_expires_at),
            "ca_file": self.ca_file,
            "last_iat": self.last_iat,
            "last_error": self.last_error,
            "last_error_at": when(self.last_error_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentState:
        """Read ``state.json``; raises KeyError/TypeError/ValueError when it is not one."""
        server, device_id, state = data["server"], data["device_id"], data["state"]
        if not all(isinstance(v, str) and v for v in (server, device_id, state)):
            raise ValueError("server, device_id and state must be non-empty strings")
        reasons = data.get("reasons") or []
        interval = data.get("report_interval_seconds", 300)
        last_iat = data.get("last_iat", 0)
        if not isinstance(interval, int) or not isinstance(last_iat, int):
            raise TypeError("report_interval_seconds and last_iat must be integers")
        ca_file, error = data.get("ca_file"), data.get("last_error")
        return cls(
            server=server,
            device_id=device_id,
            state=state,
            reasons=tuple(str(r) for r in reasons),
            last_report_at=parse_iso(data.get("last_report_at")),
            ownership=str(data.get("ownership") or "managed"),
            enrolled_at=parse_iso(data.get("enrolled_at")),
            report_interval_seconds=max(interval, 10),
            certificate_expires_at=parse_iso(data.get("certificate_expires_at")),
            ca_file=ca_file if isinstance(ca_file, str) else None,
            last_iat=last_iat,
            last_error=error if isinstance(error, str) else None,
            last_error_at=parse_iso(data.get("last_error_at")),
        )
