"""Signing keys, private halves encrypted with the master key before they reach the table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select

from nevertrust.gateway.models import StoredKey
from nevertrust.store.tables import signing_keys

__all__ = ["SqlKeyRepository"]


class SqlKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def list(self) -> Sequence[StoredKey]:
        rows = self._conn.execute(select(signing_keys).order_by(signing_keys.c.created_at))
        return [
            StoredKey(
                r.kid,
                r.algorithm,
                bytes(r.private_key_enc),
                r.public_jwk,
                r.created_at,
                r.retired_at,
            )
            for r in rows
        ]

    def insert(self, key: StoredKey) -> None:
        self._conn.execute(
            insert(signing_keys).values(
                kid=key.kid,
                algorithm=key.algorithm,
                private_key_enc=key.private_key_enc,
                public_jwk=key.public_jwk,
                created_at=key.created_at,
                retired_at=key.retired_at,
            )
        )
