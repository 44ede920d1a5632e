"""Authenticator-app codes (TOTP, RFC 6238) as a second factor.

Parameters are the ones every authenticator app defaults to: HMAC-SHA1, 6 digits,
30-second steps (RFC 6238 section 4; the otpauth URI format of Google Authenticator). A
code is accepted for the step before, the current step and the step after (section 5.2
recommends at most one step of network and clock drift), and only if that step is newer
than the last step the user spent: a code, once used, never works again, nor does any
older one (section 5.2: "the verifier MUST NOT accept the second attempt of the same
OTP"). The claim is an atomic conditional UPDATE, so two replicas racing with one code
cannot both accept it.

The shared secret is 160 bits (RFC 4226 section 4 recommends 160) and is stored sealed
with AES-GCM under the master key, bound to the user id, so a row copied onto another
user does not decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyotp
import segno

from nevertrust.audit.models import Action, AuditEntry, Outcome, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey, constant_time_equal
from nevertrust.errors import AlreadyExists, InvalidInput, NotFound
from nevertrust.identity.errors import UnknownUser
from nevertrust.identity.models import UserKind, UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "ISSUER",
    "InvalidOtp",
    "MfaStatus",
    "TotpAlreadyEnrolled",
    "TotpEnrolment",
    "TotpNotEnrolled",
    "TotpService",
    "VerifiedTotp",
    "verify_totp",
]

ISSUER = "NeverTrust"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
_SECRET_CHARS = 32  # base32: 5 bits a character, 160 bits
# Verified against when a user has no confirmed secret, so the work is the same.
_DUMMY_SECRET = "A" * _SECRET_CHARS


class InvalidOtp(InvalidInput):
    code = "invalid-otp"


class TotpNotEnrolled(NotFound):
    code = "totp-not-enrolled"


class TotpAlreadyEnrolled(AlreadyExists):
    code = "totp-already-enrolled"


@dataclass(frozen=True, slots=True)
class VerifiedTotp:
    """The outcome of checking one code: the step to claim, or why there is none."""

    step: int | None  # the newest-unused step the code belongs to; None when rejected
    replayed: bool  # the code was right for a step that has been used already


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _normalise(code: str) -> str:
    """Digits only; apps show ``123 456`` and people type what they see."""
    digits = "".join(code.split())
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else ""


def verify_totp(
    *, secret: str, code: str, now: datetime, last_used_step: int | None
) -> VerifiedTotp:
    """Check ``code`` against the steps around ``now`` (RFC 6238 section 5.2).

    Always computes and compares all three candidate codes, in constant time, so the
    response time says nothing about which step (if any) matched.
    """
    wanted = _normalise(code)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    fresh: list[int] = []
    replayed = False
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        matches = constant_time_equal(totp.generate_otp(step), wanted or "x")
        if matches and (last_used_step is None or step > last_used_step):
            fresh.append(step)
        elif matches:
            replayed = True
    if wanted and fresh:
        # Claim the oldest fresh step: it burns no more of the future than needed.
        return VerifiedTotp(step=min(fresh), replayed=False)
    return VerifiedTotp(step=None, replayed=bool(wanted) and replayed)


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """What the user's authenticator app needs; shown once, never logged."""

    secret: str
    uri: str
    qr_svg: str  # inline <svg> markup, no data: URL (the portal's CSP stays as it is)


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """A user's second factors at a glance, for admins."""

    user: str
    totp: bool  # a confirmed authenticator app
    totp_pending: bool  # enrolment started, not confirmed yet
    passkeys: int
    recovery_codes: int  # unused ones
    totp_confirmed_at: datetime | None = None


def _require_user(uow: UnitOfWork, name: str) -> UserRecord:
    user = uow.users.get_by_name(name)
    if user is None:
        raise UnknownUser(f"no user named {name!r}", name=name)
    if user.kind is UserKind.SERVICE:
        raise InvalidInput(
            f"{name} is a service account: it signs in with API keys, not second factors"
        )
    return user


class TotpService:
    """Enrol, confirm, verify and remove a user's authenticator app."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, master_key: MasterKey, issuer: str = ISSUER
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._master_key = master_key
        self._issuer = issuer

    # Sealing: the user id is the AES-GCM associated data, so rows cannot be swapped.

    def _seal(self, user_id: int, secret: str) -> bytes:
        return self._master_key.encrypt(secret.encode(), purpose=f"totp:{user_id}")

    def _open(self, user_id: int, sealed: bytes) -> str:
        return self._master_key.decrypt(sealed, purpose=f"totp:{user_id}").decode()

    def _enrolment(self, username: str, secret: str) -> TotpEnrolment:
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
            name=username, issuer_name=self._issuer
        )
        qr = segno.make(uri, error="m")
        svg = qr.svg_inline(scale=5, light="#fff", svgclass="qr", title="Authenticator QR code")
        return TotpEnrolment(secret=secret, uri=uri, qr_svg=svg)

    def _store(self, username: str, *, actor: str, confirmed: bool) -> TotpEnrolment:
        secret = pyotp.random_base32(length=_SECRET_CHARS)
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_user(uow, username)
            existing = uow.totp.get(user.id)
            if not confirmed and existing is not None and existing.confirmed_at is not None:
                # Starting over must not silently drop a working factor: an abandoned
                # enrolment would leave the account with one factor fewer.
                raise TotpAlreadyEnrolled(
                    f"{username} already has an authenticator app; remove it first"
                )
            uow.totp.put(user.id, self._seal(user.id, secret), now=now)
            target = f"user:{username}"
            if confirmed:
                # Admin-provisioned: marked confirmed with no step of the current window
                # used, so the first login's code is accepted and then claimed.
                uow.totp.confirm(user.id, step=time_step(now) - DRIFT_STEPS - 1, now=now)
                replaced = existing is not None and existing.confirmed_at is not None
                uow.audit.append(
                    [
                        success(
                            Action.MFA_ENROLLED,
                            ts=now,
                            actor=actor,
                            target=target,
                            factor="totp",
                            via="admin",
                            replaced=replaced,
                        )
                    ]
                )
                uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
            else:
                uow.audit.append(
                    [
                        success(
                            Action.MFA_ENROLMENT_STARTED,
                            ts=now,
                            actor=actor,
                            target=target,
                            factor="totp",
                        )
                    ]
                )
        return self._enrolment(username, secret)

    def begin_enrolment(self, username: str, *, actor: str) -> TotpEnrolment:
        """A new, unconfirmed secret; it protects nothing until ``confirm`` sees a code."""
        return self._store(username, actor=actor, confirmed=False)

    def enroll_confirmed(self, username: str, *, actor: str) -> TotpEnrolment:
        """Admin provisioning: stored as confirmed, replacing any earlier authenticator.

        The user proves possession at the next login.
        """
        return self._store(username, actor=actor, confirmed=True)

    def pending_enrolment(self, username: str) -> TotpEnrolment | None:
        """The unconfirmed enrolment, to show its QR code again until it is confirmed."""
        with self._uow.read() as uow:
            user = _require_user(uow, username)
            record = uow.totp.get(user.id)
        if record is None or record.confirmed_at is not None:
            return None
        return self._enrolment(username, self._open(user.id, record.secret_enc))

    def confirm(self, username: str, code: str, *, source_ip: str = "") -> None:
        """Turn a pending enrolment on with a first valid code; raises ``InvalidOtp``."""
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_user(uow, username)
            record = uow.totp.get(user.id)
            if record is None or record.confirmed_at is not None:
                raise TotpNotEnrolled(
                    f"{username} has no authenticator app waiting to be confirmed"
                )
            result = verify_totp(
                secret=self._open(user.id, record.secret_enc),
                code=code,
                now=now,
                last_used_step=record.last_used_step,
            )
            if result.step is not None:
                uow.totp.confirm(user.id, step=result.step, now=now)
                uow.audit.append(
                    [
                        AuditEntry(
                            ts=now,
                            actor=f"user:{username}",
                            action=Action.MFA_ENROLLED,
                            outcome=Outcome.SUCCESS,
                            target=f"user:{username}",
                            source=source_ip,
                            details={"factor": "totp", "via": "self"},
                        )
                    ]
                )
                uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        if result.step is None:
            raise InvalidOtp(
                "the code does not match: enter the current code from the app "
                "(and check that the device's clock is right)",
                field="otp",
            )

    def verify(self, user_id: int, code: str, *, source_ip: str = "") -> bool:
        """Whether ``code`` is a fresh code of the user's confirmed authenticator.

        Claims the code's time step in the same transaction, so a code counts once across
        every replica. Success and failure are both audited.
        """
        now = self._clock.now()
        with self._uow.write() as uow:
            user = uow.users.get_by_id(user_id)
            record = uow.totp.get(user_id)
            usable = user is not None and record is not None and record.confirmed_at is not None
            secret = (
                self._open(user_id, record.secret_enc)
                if usable and record is not None
                else _DUMMY_SECRET
            )
            result = verify_totp(
                secret=secret,
                code=code,
                now=now,
                last_used_step=record.last_used_step if record is not None else None,
            )
            accepted = (
                usable and result.step is not None and uow.totp.use_step(user_id, result.step)
            )
            if not usable:
                reason = "not-enrolled"
            elif accepted:
                reason = ""
            elif result.replayed or result.step is not None:  # lost a race: also a replay
                reason = "replayed"
            else:
                reason = "bad-code"
            uow.audit.append(
                [
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name if user else user_id}",
                        action=Action.MFA_VERIFIED if accepted else Action.MFA_FAILED,
                        outcome=Outcome.SUCCESS if accepted else Outcome.FAILURE,
                        target="portal",
                        source=source_ip,
                        reason=reason,
                        details={"factor": "totp"},
                    )
                ]
            )
        return accepted

    def remove(self, username: str, *, actor: str) -> bool:
        """Delete the user's authenticator (confirmed or pending); False if there was none."""
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_user(uow, username)
            removed = uow.totp.delete(user.id)
            if removed:
                uow.audit.append(
                    [
                        success(
                            Action.MFA_REMOVED,
                            ts=now,
                            actor=actor,
                            target=f"user:{username}",
                            factor="totp",
                        )
                    ]
                )
                uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        return removed

    def status(self, username: str | None = None) -> list[MfaStatus]:
        """Second factors per person (or of one), for ``mfa status`` and the admin API."""
        with self._uow.read() as uow:
            if username is not None:
                users = [_require_user(uow, username)]
            else:
                users = [u for u in uow.users.list() if u.kind is UserKind.PERSON]
            found = []
            for user in users:
                record = uow.totp.get(user.id)
                confirmed = record is not None and record.confirmed_at is not None
                found.append(
                    MfaStatus(
                        user=user.name,
                        totp=confirmed,
                        totp_pending=record is not None and not confirmed,
                        passkeys=len(uow.webauthn.list_for_user(user.id)),
                        recovery_codes=uow.recovery_codes.remaining(user.id),
                        totp_confirmed_at=record.confirmed_at if record is not None else None,
                    )
                )
        return found
