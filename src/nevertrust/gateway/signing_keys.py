"""The life of an assertion signing key, as pure rules over stored keys.

A key is *active* while it signs, *retiring* once replaced (still in the JWKS, so the
assertions it signed keep verifying until they expire) and *retired* once gone from the
JWKS. Every replica must sign with the same key, so "active" is a function of the
stored rows alone: the newest key not scheduled for retirement, ties broken by kid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from nevertrust.errors import InvalidInput, NeverTrustError, NotFound
from nevertrust.gateway.models import KeyState, KeyView, StoredKey

__all__ = [
    "MAX_OVERLAP",
    "InvalidOverlap",
    "SigningKeyInUse",
    "UnknownSigningKey",
    "check_overlap",
    "choose_active",
    "is_due",
    "published",
    "rotation_retirements",
    "view_of",
]

# The settings allow the same range (gateway.signing_key_overlap_minutes).
MAX_OVERLAP = timedelta(days=7)


class UnknownSigningKey(NotFound):
    code = "unknown-signing-key"


class SigningKeyInUse(NeverTrustError):
    """Retiring the active key would leave the gateway nothing to sign with."""

    code = "signing-key-in-use"
    http_status = 409
    exit_code = 4


class InvalidOverlap(InvalidInput):
    code = "invalid-overlap"


def check_overlap(overlap: timedelta) -> timedelta:
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise InvalidOverlap(
            f"overlap must be between 0 and {MAX_OVERLAP.days} days, "
            f"got {int(overlap.total_seconds())} s",
            field="overlap",
        )
    return overlap


def choose_active(keys: Iterable[StoredKey]) -> StoredKey | None:
    """The newest key not scheduled for retirement; None when there is none yet."""
    return max(
        (k for k in keys if k.retired_at is None),
        key=lambda k: (k.created_at, k.kid),
        default=None,
    )


def published(key: StoredKey, now: datetime) -> bool:
    """Whether verifiers may still meet this key: unretired, or retiring in the future."""
    return key.retired_at is None or key.retired_at > now


def view_of(key: StoredKey, *, active_kid: str | None, now: datetime) -> KeyView:
    if key.kid == active_kid:
        state = KeyState.ACTIVE
    elif published(key, now):
        state = KeyState.RETIRING
    else:
        state = KeyState.RETIRED
    return KeyView(kid=key.kid, created_at=key.created_at, retired_at=key.retired_at, state=state)


def rotation_retirements(
    keys: Iterable[StoredKey], *, now: datetime, overlap: timedelta
) -> Mapping[str, datetime]:
    """When each key a rotation at ``now`` replaces leaves the JWKS.

    Every unretired key goes at ``now + overlap``. A key already retiring keeps its
    earlier date, or is brought forward to ``now + overlap`` if that is sooner: a rotation
    never lengthens an old key's life, and a short overlap (down to 0 for a suspected
    compromise) shortens every old key's.
    """
    end = now + overlap
    return {
        k.kid: end
        for k in keys
        if published(k, now) and (k.retired_at is None or k.retired_at > end)
    }


def is_due(active: StoredKey | None, *, now: datetime, max_age: timedelta) -> bool:
    """Whether automatic rotation should replace ``active`` (no key at all: yes)."""
    return active is None or now - active.created_at >= max_age
