"""Gateway records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["StoredKey"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An assertion signing key as stored: the private half encrypted with the master key."""

    kid: str
    algorithm: str
    private_key_enc: bytes
    public_jwk: str
    created_at: datetime
    retired_at: datetime | None
