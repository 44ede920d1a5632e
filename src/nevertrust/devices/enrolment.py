"""Enrolment tokens, enrolment, and signed posture reports: what devices do themselves.

Security rules (docs/devices.md):
- A token is 256 random bits, shown once, stored as SHA-256, bound to the user it was made
  for, valid ``devices.enrolment_token_minutes`` and redeemed by one conditional UPDATE, so
  of two enrolments racing with one token exactly one succeeds.
- Everything an enrolment or report carries is validated before the token is spent or a
  row is touched; any refusal rolls the whole transaction back: nothing is stored.
- A report is verified (``signed_reports.verify_report``) outside the write lock, so forged
  reports cannot queue writers; the replay checks are repeated under a row lock.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nevertrust.audit.models import Action, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token
from nevertrust.devices.authority import DeviceAuthority
from nevertrust.devices.ca import load_device_public_key
from nevertrust.devices.compliance import evaluate_compliance, state_for
from nevertrust.devices.errors import (
    DeviceNotEnrolled,
    InvalidEnrolmentToken,
    InvalidPosture,
    ReportReplayed,
)
from nevertrust.devices.models import (
    DeviceRecord,
    EnrolmentToken,
    IssuedCertificate,
    Ownership,
    Platform,
    State,
)
from nevertrust.devices.policies import policy_for
from nevertrust.devices.posture import Posture, parse_posture
from nevertrust.devices.signed_reports import verify_report
from nevertrust.errors import InvalidInput
from nevertrust.identity.errors import UnknownUser
from nevertrust.identity.models import UserKind

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["Enrolment", "EnrolmentService", "ReportOutcome", "new_device_id"]

_log = logging.getLogger("nevertrust.devices")
TOKEN_PREFIX = "ntd_"  # noqa: S105 - a prefix that makes tokens recognisable, not a secret
_MAX_TOKEN = 200


def new_device_id() -> str:
    """``dev_`` and 80 random bits in lower-case base32: unguessable, URL and DNS safe."""
    return "dev_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _device_name(name: str) -> str:
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= 100:
        raise InvalidInput("name: expected the device's host name, 1 to 100 characters")
    if any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise InvalidInput("name: control characters are not allowed")
    return cleaned


def _ownership(value: str) -> Ownership:
    try:
        return Ownership(value)
    except ValueError:
        raise InvalidInput(f"ownership: expected managed or personal, got {value!r}") from None


def _without_time(posture: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (posture or {}).items() if k != "collected_at"}


@dataclass(frozen=True, slots=True)
class Enrolment:
    device: DeviceRecord
    certificate: IssuedCertificate
    ca_certificate_pem: str


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    state: State
    reasons: tuple[str, ...]
    certificate: IssuedCertificate | None  # a renewed certificate, when one was due

    @property
    def compliant(self) -> bool:
        return self.state is State.COMPLIANT


class EnrolmentService:
    """Issues enrolment tokens, enrols devices and accepts their signed posture reports."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        authority: DeviceAuthority,
        token_ttl: timedelta,
        certificate_lifetime: timedelta,
        report_max_age: timedelta,
        stale_after: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authority = authority
        self._token_ttl = token_ttl
        self._lifetime = certificate_lifetime
        self._max_age = report_max_age
        self._stale_after = stale_after

    # Tokens

    def create_token(self, username: str, *, actor: str) -> EnrolmentToken:
        """A one-time token with which a device of ``username`` enrols (shown once)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        expires_at = now + self._token_ttl
        with self._uow.write() as uow:
            user = uow.users.get_by_name(username)
            if user is None:
                raise UnknownUser(f"no user named {username!r}", name=username)
            if user.kind is not UserKind.PERSON or not user.enabled:
                raise InvalidInput(
                    f"user {username!r} cannot enrol devices: devices belong to enabled people"
                )
            uow.device_tokens.insert(
                token_hash=hash_token(token),
                user_id=user.id,
                now=now,
                expires_at=expires_at,
            )
            uow.audit.append(
                [
                    success(
                        Action.DEVICE_TOKEN_CREATED,
                        ts=now,
                        actor=actor,
                        target=f"user:{username}",
                        expires_at=expires_at.isoformat(),
                    )
                ]
            )
        return EnrolmentToken(token=token, username=username, expires_at=expires_at)

    # Enrolment

    def enrol(
        self,
        *,
        token: str,
        public_key_pem: str,
        name: str,
        ownership: str = "managed",
        posture: object = None,
        source_ip: str = "",
    ) -> Enrolment:
        """Enrol a device with a one-time token: store its key, issue its certificate.

        Raises ``InvalidEnrolmentToken`` for an unknown, used or expired token (one answer
        for all three), and input errors naming the field; both leave the token unspent.
        """
        key = load_device_public_key(public_key_pem)
        device_name = _device_name(name)
        owned = _ownership(ownership)
        parsed = None if posture is None else parse_posture(posture)
        if not token or len(token) > _MAX_TOKEN:
            raise InvalidEnrolmentToken("the enrolment token is unknown, used or expired")
        device_id = new_device_id()
        ca = self._authority.ca()
        certificate = ca.issue(device_id=device_id, public_key=key, lifetime=self._lifetime)
        now = self._clock.now()
        with self._uow.write() as uow:
            user_id = uow.device_tokens.redeem(hash_token(token), now=now)
            user = None if user_id is None else uow.users.get_by_id(user_id)
            if user is None or not user.enabled or user.kind is not UserKind.PERSON:
                raise InvalidEnrolmentToken("the enrolment token is unknown, used or expired")
            document = None if parsed is None else parsed.to_json()
            state, reasons = self._evaluate(uow, parsed, document, now=now, quarantined=False)
            record = DeviceRecord(
                device_id=device_id,
                user_id=user.id,
                name=device_name,
                platform=None if parsed is None else Platform(parsed.platform),
                ownership=owned,
                state=state,
                reasons=reasons,
                public_key_pem=public_key_pem.strip() + "\n",
                certificate_serial=certificate.serial,
                certificate_expires_at=certificate.not_after,
                enrolled_at=now,
                posture=document,
                last_report_at=None if parsed is None else now,
                username=user.name,
            )
            uow.devices.insert(record)
            enrolled = success(
                Action.DEVICE_ENROLLED,
                ts=now,
                actor=f"user:{user.name}",
                target=f"device:{device_id}",
                name=device_name,
                platform=record.platform,
                ownership=str(owned),
                state=str(state),
                reasons=list(reasons),
                certificate_serial=certificate.serial,
            )
            uow.audit.append([replace(enrolled, source=source_ip[:200])])
            uow.changes.record(ChangeEvent(Topic.DEVICE, device_id), now=now)
        return Enrolment(record, certificate, ca.certificate_pem)

    # Reports

    def report(self, device_id: str, token: str) -> ReportOutcome:
        """Accept a signed posture report; raises a ``ReportRefused`` or input error and
        stores nothing when it is not acceptable (see ``signed_reports``)."""
        now = self._clock.now()
        with self._uow.read() as uow:
            device = uow.devices.get(device_id[:64])
        if device is None:
            raise DeviceNotEnrolled(f"no enrolled device {device_id[:64]!r}")
        verified = verify_report(
            token,
            device_id=device.device_id,
            public_key=load_device_public_key(device.public_key_pem),
            now=now,
            max_age=self._max_age,
            last_iat=device.last_report_iat,
            last_jti=device.last_report_jti,
        )
        posture = verified.posture
        if device.platform is not None and posture.platform != device.platform:
            raise InvalidPosture(
                f"posture.platform: device {device_id} enrolled as {device.platform}, "
                f"the report says {posture.platform}",
                field="posture.platform",
            )
        renewed = self._renewal(device, now)
        document = posture.to_json()
        with self._uow.write() as uow:
            locked = uow.devices.get(device.device_id, for_update=True)
            if locked is None:  # removed meanwhile
                raise DeviceNotEnrolled(f"no enrolled device {device_id!r}")
            if locked.public_key_pem != device.public_key_pem:  # pragma: no cover - no re-key
                raise DeviceNotEnrolled(f"device {device_id!r} changed its key meanwhile")
            last = locked.last_report_iat
            if locked.last_report_jti == verified.jti or (
                last is not None and verified.iat <= last
            ):
                raise ReportReplayed("a newer or identical report was accepted meanwhile")
            quarantined = locked.state is State.QUARANTINED
            state, reasons = self._evaluate(
                uow, posture, document, now=now, quarantined=quarantined
            )
            if not uow.devices.accept_report(
                device.device_id,
                posture=document,
                iat=verified.iat,
                jti=verified.jti,
                state=state,
                reasons=reasons,
                now=now,
                certificate=renewed,
            ):
                raise ReportReplayed("a newer or identical report was accepted meanwhile")
            self._record(uow, locked, state, reasons, document, renewed, now=now)
        return ReportOutcome(state, reasons, renewed)

    # Internals

    def _evaluate(
        self,
        uow: UnitOfWork,
        posture: Posture | None,
        document: Mapping[str, Any] | None,
        *,
        now: datetime,
        quarantined: bool,
    ) -> tuple[State, tuple[str, ...]]:
        if posture is None:
            state = state_for(quarantined=quarantined, compliant=False, has_posture=False)
            return state, (("quarantined",) if quarantined else ()) + ("posture-missing",)
        policy = policy_for(uow, Platform(posture.platform))
        compliant, reasons = evaluate_compliance(
            document,
            policy,
            now=now,
            last_report_at=now,
            stale_after=self._stale_after,
            quarantined=quarantined,
        )
        return state_for(quarantined=quarantined, compliant=compliant, has_posture=True), reasons

    def _renewal(self, device: DeviceRecord, now: datetime) -> IssuedCertificate | None:
        """A new certificate for the same key once less than a third of the life is left."""
        if device.certificate_expires_at - now >= self._lifetime / 3:
            return None
        key = load_device_public_key(device.public_key_pem)
        ca = self._authority.ca()
        return ca.issue(device_id=device.device_id, public_key=key, lifetime=self._lifetime)

    def _heartbeat_due(self, device_id: str, before: datetime | None, now: datetime) -> bool:
        """Whether to announce a report that changed nothing, so that caches of the last
        report time (gateways judge staleness from it) are never more than a quarter of
        ``stale_after`` behind: about four events a day per device, whatever the report
        interval. Each device's quarters are offset by its id, so devices do not all
        announce at the same moment."""
        if before is None:
            return True
        period = max(int(self._stale_after.total_seconds() / 4), 1)
        offset = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:4], "big") % period
        return int(before.timestamp() + offset) // period != int(now.timestamp() + offset) // period

    def _record(
        self,
        uow: UnitOfWork,
        before: DeviceRecord,
        state: State,
        reasons: tuple[str, ...],
        document: Mapping[str, Any],
        renewed: IssuedCertificate | None,
        *,
        now: datetime,
    ) -> None:
        """Audit what changed and announce it: state and reasons, the certificate, and any
        posture change (policies may test posture fields, so gateways need it)."""
        actor = f"device:{before.device_id}"
        entries = []
        if (state, reasons) != (before.state, before.reasons):
            entries.append(
                success(
                    Action.DEVICE_STATE_CHANGED,
                    ts=now,
                    actor=actor,
                    target=actor,
                    before=str(before.state),
                    after=str(state),
                    reasons=list(reasons),
                    cause="report",
                )
            )
        if renewed is not None:
            entries.append(
                success(
                    Action.DEVICE_CERTIFICATE_RENEWED,
                    ts=now,
                    actor=actor,
                    target=actor,
                    serial=renewed.serial,
                    replaces=before.certificate_serial,
                    expires_at=renewed.not_after.isoformat(),
                )
            )
        if entries:
            uow.audit.append(entries)
        if (
            entries
            or _without_time(before.posture) != _without_time(document)
            or self._heartbeat_due(before.device_id, before.last_report_at, now)
        ):
            uow.changes.record(ChangeEvent(Topic.DEVICE, before.device_id), now=now)
        _log.debug("device report accepted", extra={"device": before.device_id})
