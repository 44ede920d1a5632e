"""Gateway records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = ["KeyState", "KeyView", "Rotation", "StoredKey"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An assertion signing key as stored: the private half encrypted with the master key.

    ``retired_at`` is when the key leaves the JWKS: ``None`` while it may sign, a future
    time while it is being replaced (verifiers still accept it), a past time once gone.
    """

    kid: str
    algorithm: str
    private_key_enc: bytes
    public_jwk: str
    created_at: datetime
    retired_at: datetime | None


class KeyState(StrEnum):
    ACTIVE = "active"  # signs new assertions, published in the JWKS
    RETIRING = "retiring"  # replaced: still published, until retired_at
    RETIRED = "retired"  # no longer published: assertions it signed no longer verify


@dataclass(frozen=True, slots=True)
class KeyView:
    """What an operator sees of a signing key (never the private half)."""

    kid: str
    created_at: datetime
    retired_at: datetime | None
    state: KeyState


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of a rotation: the new active key and the keys it replaced (each with
    when it leaves the JWKS)."""

    active: KeyView
    replaced: tuple[KeyView, ...]
