"""Password hashing with argon2id (RFC 9106) at OWASP's recommended parameters.

OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1. Unknown users are verified against
a dummy hash so that the work done, and so the response time, does not reveal which
accounts exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Passwords"]


class Passwords:
    def __init__(self, *, memory_kib: int = 19 * 1024, time_cost: int = 2, parallelism: int = 1):
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("nevertrust-dummy-password-for-timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check ``password``; with no hash, do the same work and return False."""
        try:
            # bool(), not "is not None": an empty stored hash also means "no password", and
            # the dummy's password is public, so it must never count as a match.
            return self._hasher.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
