"""Numbered versions of a stored document: the access file's and the policy document's.

Both tables have the same columns and the same use (append a version, list, fetch one,
the newest is in force), so one repository serves both, typed by its record class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table, insert, select

__all__ = ["VersionedDocuments"]

V = TypeVar("V")


class VersionedDocuments(Generic[V]):
    def __init__(self, conn: Connection, *, table: Table, record: Callable[..., V]) -> None:
        self._conn = conn
        self._table = table
        self._record = record

    def _make(self, row: Any) -> V:
        return self._record(
            version=row.version,
            document=row.document,
            sha256=row.sha256,
            source=row.source,
            applied_by=row.applied_by,
            applied_at=row.applied_at,
            summary=row.summary,
        )

    def insert(
        self,
        *,
        document: str,
        sha256: str,
        source: str,
        applied_by: str,
        summary: str,
        now: datetime,
    ) -> int:
        result = self._conn.execute(
            insert(self._table).values(
                document=document,
                sha256=sha256,
                source=source[:500],
                applied_by=applied_by[:200],
                applied_at=now,
                summary=summary,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def latest(self) -> V | None:
        row = self._conn.execute(
            select(self._table).order_by(self._table.c.version.desc()).limit(1)
        ).first()
        return None if row is None else self._make(row)

    def get(self, version: int) -> V | None:
        row = self._conn.execute(
            select(self._table).where(self._table.c.version == version)
        ).first()
        return None if row is None else self._make(row)

    def list(self, *, limit: int = 50) -> Sequence[V]:
        rows = self._conn.execute(
            select(self._table).order_by(self._table.c.version.desc()).limit(limit)
        )
        return [self._make(r) for r in rows]
