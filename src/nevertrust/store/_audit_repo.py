"""SQL audit repository: appends to the hash chain under the chain-head lock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from nevertrust.audit.chain import seal
from nevertrust.audit.models import AuditEntry, SealedRecord
from nevertrust.store.tables import audit_head, audit_log

__all__ = ["SqlAuditRepository"]


def _sealed(row: Any) -> SealedRecord:
    return SealedRecord(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        target=row.target,
        source=row.source,
        reason=row.reason,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SqlAuditRepository:
    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self._conn = conn
        self._is_sqlite = is_sqlite

    def _lock_head(self) -> tuple[int, str]:
        query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        if not self._is_sqlite:
            # SQLite write transactions already hold the database write lock (BEGIN IMMEDIATE).
            query = query.with_for_update()
        row = self._conn.execute(query).one()
        return int(row.seq), str(row.hash)

    def append(self, entries: Sequence[AuditEntry]) -> Sequence[SealedRecord]:
        if not entries:
            return []
        seq, prev_hash = self._lock_head()
        sealed: list[SealedRecord] = []
        for entry in entries:
            seq += 1
            record = seal(entry, seq=seq, prev_hash=prev_hash)
            sealed.append(record)
            prev_hash = record.hash
        self._conn.execute(
            insert(audit_log),
            [
                {
                    "seq": r.seq,
                    "ts": r.ts,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "source": r.source,
                    "outcome": r.outcome,
                    "reason": r.reason,
                    "details": r.details,
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                }
                for r in sealed
            ],
        )
        self._conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev_hash)
        )
        return sealed

    def tail(self, limit: int) -> Sequence[SealedRecord]:
        rows = self._conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit))
        return list(reversed([_sealed(r) for r in rows]))

    def iterate(self, *, batch: int = 5000) -> Iterator[SealedRecord]:
        # Sequence order; verify_chain checks the hash links, so reordering still shows.
        last = -1
        while True:
            rows = self._conn.execute(
                select(audit_log)
                .where(audit_log.c.seq > last)
                .order_by(audit_log.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield _sealed(row)
            last = rows[-1].seq

    def head(self) -> tuple[int, str]:
        row = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        return int(row.seq), str(row.hash)
