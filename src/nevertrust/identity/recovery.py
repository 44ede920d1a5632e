"""One-time recovery codes: the way back in when the authenticator app is lost.

Each code is 12 characters of Crockford's base32 (no I, L, O or U, so nothing can be
misread), 60 random bits, shown as ``xxxx-xxxx-xxxx``. Online guessing against 60 bits
is hopeless; only a SHA-256 of the normalised code (bound to the user id) is stored, and
a code works once. Typing is forgiving: case, dashes and spaces do not matter, and the
letters Crockford maps to digits (O to 0, I and L to 1) are read as those digits.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token
from nevertrust.errors import InvalidInput
from nevertrust.identity.errors import UnknownUser
from nevertrust.identity.models import UserKind, UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "ALPHABET",
    "CODE_COUNT",
    "RecoveryCodeService",
    "code_hash",
    "new_code",
    "normalise_code",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: 32 symbols, 5 bits each
CODE_CHARS = 12  # 60 bits
CODE_COUNT = 10
_GROUP = 4
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = str.maketrans("", "", "- \t")


def new_code() -> str:
    """A fresh code as people see it: ``7k3m-q9xd-0hbt``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + _GROUP] for i in range(0, CODE_CHARS, _GROUP)).lower()


def normalise_code(code: str) -> str | None:
    """The canonical form of a typed code, or None if it cannot be one of ours."""
    if len(code) > 64:
        return None
    canonical = code.strip().upper().translate(_IGNORED).translate(_READ_AS)
    if len(canonical) != CODE_CHARS or any(c not in ALPHABET for c in canonical):
        return None
    return canonical


def code_hash(user_id: int, canonical: str) -> str:
    # The user id makes equal codes of two users hash apart: no table serves both.
    return hash_token(f"recovery:{user_id}:{canonical}")


def _require_person(uow: UnitOfWork, name: str) -> UserRecord:
    user = uow.users.get_by_name(name)
    if user is None:
        raise UnknownUser(f"no user named {name!r}", name=name)
    if user.kind is UserKind.SERVICE:
        raise InvalidInput(f"{name} is a service account: it has no recovery codes")
    return user


class RecoveryCodeService:
    """Generate, redeem and count a user's recovery codes."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, count: int = CODE_COUNT) -> None:
        self._uow = uow
        self._clock = clock
        self._count = count

    def generate(self, username: str, *, actor: str) -> list[str]:
        """A new set of codes, returned once; every earlier code stops working."""
        codes = [new_code() for _ in range(self._count)]
        now = self._clock.now()
        with self._uow.write() as uow:
            user = _require_person(uow, username)
            hashes = []
            for code in codes:
                canonical = normalise_code(code)
                assert canonical is not None  # noqa: S101 - new_code always normalises
                hashes.append(code_hash(user.id, canonical))
            uow.recovery_codes.replace(user.id, hashes, now=now)
            uow.audit.append(
                [
                    success(
                        Action.RECOVERY_CODES_GENERATED,
                        ts=now,
                        actor=actor,
                        target=f"user:{username}",
                        count=len(codes),
                    )
                ]
            )
            uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        return codes

    def redeem(self, user_id: int, code: str, *, source_ip: str = "") -> bool:
        """Spend a code; True once per code, audited either way."""
        now = self._clock.now()
        canonical = normalise_code(code)
        with self._uow.write() as uow:
            user = uow.users.get_by_id(user_id)
            redeemed = (
                user is not None
                and canonical is not None
                and uow.recovery_codes.redeem(user_id, code_hash(user_id, canonical), now=now)
            )
            left = uow.recovery_codes.remaining(user_id) if user is not None else 0
            uow.audit.append(
                [
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name if user else user_id}",
                        action=Action.MFA_VERIFIED if redeemed else Action.MFA_FAILED,
                        outcome=Outcome.SUCCESS if redeemed else Outcome.FAILURE,
                        target="portal",
                        source=source_ip,
                        reason="" if redeemed else "bad-recovery-code",
                        details={"factor": "recovery-code", "remaining": left},
                    )
                ]
            )
        return redeemed

    def remaining(self, username: str) -> int:
        with self._uow.read() as uow:
            return uow.recovery_codes.remaining(_require_person(uow, username).id)
