"""An admin's answer to "I lost my phone and my security key": remove every second factor.

One transaction removes the authenticator app, every passkey and the recovery codes, so a
reset never leaves a half-reset account. The user keeps their sessions (a reset is not a
sign-out) and, if a group requires MFA, must enrol again before reaching any app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.identity.errors import UnknownUser

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = ["MfaReset", "MfaResetService"]


@dataclass(frozen=True, slots=True)
class MfaReset:
    user: str
    totp: bool
    passkeys: int
    recovery_codes: int

    @property
    def anything(self) -> bool:
        return self.totp or self.passkeys > 0 or self.recovery_codes > 0


class MfaResetService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def reset(self, username: str, *, actor: str) -> MfaReset:
        now = self._clock.now()
        with self._uow.write() as uow:
            user = uow.users.get_by_name(username)
            if user is None:
                raise UnknownUser(f"no user named {username!r}", name=username)
            result = MfaReset(
                user=user.name,
                totp=uow.totp.delete(user.id),
                passkeys=uow.webauthn.delete_all(user.id),
                recovery_codes=uow.recovery_codes.delete_all(user.id),
            )
            uow.audit.append(
                [
                    success(
                        Action.MFA_RESET,
                        ts=now,
                        actor=actor,
                        target=f"user:{user.name}",
                        totp=result.totp,
                        passkeys=result.passkeys,
                        recovery_codes=result.recovery_codes,
                    )
                ]
            )
            uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        return result
