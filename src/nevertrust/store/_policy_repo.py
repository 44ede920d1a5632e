"""SQL repository for policy document versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from nevertrust.policy.models import PolicyVersion
from nevertrust.store.tables import policy_versions

__all__ = ["SqlPolicyRepository"]


def _version(row: Any) -> PolicyVersion:
    return PolicyVersion(
        version=row.version,
        document=row.document,
        sha256=row.sha256,
        source=row.source,
        applied_by=row.applied_by,
        applied_at=row.applied_at,
        summary=row.summary,
    )


class SqlPolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

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
            insert(policy_versions).values(
                document=document,
                sha256=sha256,
                source=source[:500],
                applied_by=applied_by[:200],
                applied_at=now,
                summary=summary,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def latest(self) -> PolicyVersion | None:
        row = self._conn.execute(
            select(policy_versions).order_by(policy_versions.c.version.desc()).limit(1)
        ).first()
        return None if row is None else _version(row)

    def get(self, version: int) -> PolicyVersion | None:
        row = self._conn.execute(
            select(policy_versions).where(policy_versions.c.version == version)
        ).first()
        return None if row is None else _version(row)

    def list(self, *, limit: int = 50) -> Sequence[PolicyVersion]:
        rows = self._conn.execute(
            select(policy_versions).order_by(policy_versions.c.version.desc()).limit(limit)
        )
        return [_version(r) for r in rows]
