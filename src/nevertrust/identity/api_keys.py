"""API keys for service accounts: format, parsing, hashing, scopes, lifetimes. Pure.

A key reads ``ntk_<prefix>_<secret>``:

- ``ntk_`` makes a leaked key recognisable to secret scanners and to people;
- ``prefix`` is 10 random base32 characters (50 bits). It is *not* secret: it names the key
  in lists, logs and audit records and is how the database finds it;
- ``secret`` is 256 random bits (``crypto.new_token``, base64url, 43 characters). Only its
  SHA-256 is stored. A keyless hash suffices because the input is uniformly random (the
  same argument as for session ids); a slow password hash would add nothing but latency.

Comparison is constant-time, so a stored hash cannot be recovered byte by byte.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from nevertrust.crypto import constant_time_equal, hash_token, new_token
from nevertrust.errors import InvalidInput, NotFound
from nevertrust.identity.models import ApiKeyRecord

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_TTL",
    "MAX_GRACE",
    "MAX_TTL",
    "STALE_AFTER",
    "InvalidDuration",
    "KeyStatus",
    "ParsedKey",
    "Scope",
    "UnknownApiKey",
    "UnknownScope",
    "check_grace",
    "check_scopes",
    "check_ttl",
    "format_key",
    "hash_secret",
    "is_stale",
    "key_status",
    "new_prefix",
    "new_secret",
    "parse_duration",
    "parse_key",
    "scope_allows",
    "secret_matches",
    "superseded_ids",
]

KEY_TAG = "ntk"
PREFIX_LENGTH = 10
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_SECRET_LENGTH = 43  # 32 bytes in unpadded base64url
_KEY = re.compile(rf"{KEY_TAG}_([a-z2-7]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{{_SECRET_LENGTH}}})")
_PREFIX = re.compile(rf"[a-z2-7]{{{PREFIX_LENGTH}}}")

DEFAULT_TTL = timedelta(days=90)
MAX_TTL = timedelta(days=365)
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
STALE_AFTER = timedelta(days=30)


class Scope(StrEnum):
    """What a key may do. Deliberately coarse; who may do it stays with group membership."""

    READ = "api:read"  # safe methods (GET, HEAD, OPTIONS)
    WRITE = "api:write"  # every method


class UnknownScope(InvalidInput):
    code = "unknown-scope"


class InvalidDuration(InvalidInput):
    code = "invalid-duration"


class UnknownApiKey(NotFound):
    code = "unknown-api-key"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    prefix: str
    secret: str

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"ParsedKey(prefix={self.prefix!r}, secret=<hidden>)"


def new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def new_secret() -> str:
    return new_token()


def format_key(prefix: str, secret: str) -> str:
    return f"{KEY_TAG}_{prefix}_{secret}"


def parse_key(text: str) -> ParsedKey | None:
    """The prefix and secret of a well-formed key, else None (never an error: it is input)."""
    match = _KEY.fullmatch(text)
    return None if match is None else ParsedKey(prefix=match.group(1), secret=match.group(2))


def is_prefix(text: str) -> bool:
    return _PREFIX.fullmatch(text) is not None


def hash_secret(secret: str) -> str:
    return hash_token(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return constant_time_equal(hash_secret(secret), stored_hash)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, de-duplicated in a stable order; unknown or missing scopes are refused."""
    known = [s.value for s in Scope]
    unknown = sorted({s for s in scopes if s not in known})
    if unknown:
        raise UnknownScope(
            f"unknown scope {', '.join(map(repr, unknown))}: expected one of {', '.join(known)}",
            field="scopes",
        )
    if not scopes:
        raise UnknownScope(f"a key needs at least one scope: {', '.join(known)}", field="scopes")
    return tuple(s for s in known if s in scopes)


def scope_allows(scopes: tuple[str, ...], method: str) -> bool:
    if Scope.WRITE in scopes:
        return True
    return Scope.READ in scopes and method.upper() in ("GET", "HEAD", "OPTIONS")


_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, field: str) -> timedelta:
    """``90s``, ``15m``, ``24h`` or ``30d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidDuration(
            f"{field}: expected a duration like 30d, 24h or 15m, got {text!r}", field=field
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def check_ttl(ttl: timedelta | None) -> timedelta:
    """A key's lifetime: 90 days unless said otherwise, at most a year, never unlimited.

    Keys that never expire are how forgotten credentials outlive their owners; a bounded
    lifetime forces a rotation habit.
    """
    if ttl is None:
        return DEFAULT_TTL
    if ttl <= timedelta(0) or ttl > MAX_TTL:
        raise InvalidDuration(
            f"key lifetime must be more than 0 and at most {MAX_TTL.days} days, "
            f"got {_describe(ttl)}",
            field="expires_in",
        )
    return ttl


def check_grace(grace: timedelta | None) -> timedelta:
    if grace is None:
        return DEFAULT_GRACE
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise InvalidDuration(
            f"rotation grace must be between 0 and {MAX_GRACE.days} days, got {_describe(grace)}",
            field="grace",
        )
    return grace


def _describe(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def key_status(key: ApiKeyRecord, now: datetime) -> KeyStatus:
    if key.revoked_at is not None:
        return KeyStatus.REVOKED
    if key.expires_at is not None and now >= key.expires_at:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE


def superseded_ids(keys: list[ApiKeyRecord] | tuple[ApiKeyRecord, ...]) -> set[int]:
    """Keys replaced by a newer key of the same account and name (what rotation leaves)."""
    newest: dict[tuple[int, str], int] = {}
    for key in keys:
        slot = (key.user_id, key.name)
        newest[slot] = max(newest.get(slot, key.id), key.id)
    return {k.id for k in keys if newest[(k.user_id, k.name)] != k.id}


def is_stale(key: ApiKeyRecord, now: datetime, *, superseded: bool = False) -> bool:
    """Needs attention: expired, or unused for 30 days (never used counts from creation).

    Revoked keys are dealt with, and so are expired keys a rotation replaced (``superseded``):
    otherwise every rotation would leave a stale key behind for ever.
    """
    status = key_status(key, now)
    if status is KeyStatus.REVOKED:
        return False
    if status is KeyStatus.EXPIRED:
        return not superseded
    return now - (key.last_used_at or key.created_at) >= STALE_AFTER
