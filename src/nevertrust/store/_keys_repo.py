"""Signing keys, private halves encrypted with the master key before they reach the table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, text, update

from nevertrust.gateway.models import StoredKey
from nevertrust.store.tables import signing_keys

__all__ = ["SqlKeyRepository"]

# pg_advisory_xact_lock key for signing-key changes (ASCII "NTSIGKEY").
_LOCK_ID = 0x4E54_5349_474B_4559


class SqlKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self) -> None:
        # SQLite write transactions already hold the database's write lock from BEGIN
        # IMMEDIATE. PostgreSQL (READ COMMITTED) needs a lock of its own: a transaction-level
        # advisory lock, released at commit or rollback. Statements after it see every
        # change committed before it was granted.
        if self._conn.dialect.name == "postgresql":
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})

    def list(self) -> Sequence[StoredKey]:
        rows = self._conn.execute(
            select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
        )
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

    def set_retired_at(self, kid: str, at: datetime) -> None:
        self._conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(retired_at=at)
        )
