"""The change log: one row per decision-relevant write, in the writer's transaction.

On PostgreSQL the row is also announced with NOTIFY, which the server delivers on commit,
so listeners wake at once instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.store.tables import change_log

__all__ = ["NOTIFY_CHANNEL", "SqlChangeRepository"]

NOTIFY_CHANNEL = "nevertrust_changes"


class SqlChangeRepository:
    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self._conn = conn
        self._is_sqlite = is_sqlite

    def record(self, event: ChangeEvent, *, now: datetime) -> None:
        self._conn.execute(
            insert(change_log).values(topic=str(event.topic), key=event.key, created_at=now)
        )
        if not self._is_sqlite:
            self._conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": NOTIFY_CHANNEL, "payload": f"{event.topic}:{event.key}"},
            )

    def since(self, last_id: int, *, limit: int = 1000) -> Sequence[tuple[int, ChangeEvent]]:
        rows = self._conn.execute(
            select(change_log.c.id, change_log.c.topic, change_log.c.key)
            .where(change_log.c.id > last_id)
            .order_by(change_log.c.id)
            .limit(limit)
        )
        result: list[tuple[int, ChangeEvent]] = []
        for row_id, topic, key in rows:
            try:
                event = ChangeEvent(Topic(topic), key)
            except ValueError:  # written by a newer version: be safe, drop everything
                event = ChangeEvent(Topic.EVERYTHING)
            result.append((int(row_id), event))
        return result

    def last_id(self) -> int:
        return int(
            self._conn.execute(select(func.coalesce(func.max(change_log.c.id), 0))).scalar_one()
        )
