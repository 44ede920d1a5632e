"""The change-feed watcher: turns other processes' writes into events on this process's bus.

- SQLite: ``PRAGMA data_version`` on a dedicated connection changes when any other
  connection commits; checking it costs microseconds, so we check it often.
- PostgreSQL: LISTEN on the channel the change log NOTIFYs, with a slow poll as backstop.
A process that loses the feed (reconnect, error) publishes EVERYTHING: caches drop all
they hold rather than risk serving a revoked session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

import anyio.to_thread

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.store._changes_repo import NOTIFY_CHANNEL
from nevertrust.store.database import Database
from nevertrust.store.uow import SqlUnitOfWorkFactory

__all__ = ["ChangeFeedWatcher"]

_log = logging.getLogger("nevertrust.feed")


class ChangeFeedWatcher:
    def __init__(
        self,
        *,
        db: Database,
        uow: SqlUnitOfWorkFactory,
        publish: Callable[[ChangeEvent], None],
        poll_interval: float = 0.02,
        backstop_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._uow = uow
        self._publish = publish
        self._poll = poll_interval
        self._backstop = backstop_interval
        self._last_id = 0
        self._lock = asyncio.Lock()
        self.events_seen = 0

    def start_position(self) -> None:
        """Begin after every change already made; the caller builds state after this."""
        with self._uow.read() as uow:
            self._last_id = uow.changes.last_id()

    def _pull(self) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        with self._uow.read() as uow:
            while True:
                batch = uow.changes.since(self._last_id)
                if not batch:
                    break
                for row_id, event in batch:
                    self._last_id = row_id
                    events.append(event)
        return events

    async def sync(self) -> int:
        """Publish every change since the last sync; returns how many."""
        async with self._lock:
            pull = asyncio.ensure_future(anyio.to_thread.run_sync(self._pull))
            try:
                events = await asyncio.shield(pull)
            except asyncio.CancelledError:
                # Cancelling does not stop the thread: let it finish, so its database
                # connection is back in the pool before the canceller goes on to close it.
                with contextlib.suppress(Exception):
                    await pull
                raise
            for event in events:
                self._publish(event)
            self.events_seen += len(events)
            return len(events)

    async def run(self) -> None:
        if self._db.is_sqlite:
            await self._run_sqlite()
        else:
            await self._run_postgres()

    async def _run_sqlite(self) -> None:
        path = self._db.url.split("///", 1)[-1]
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            # Not the current value: commits made between start_position() and here did not
            # move data_version for this new connection, so the first poll must sync anyway.
            version = -1
            while True:
                await asyncio.sleep(self._poll)
                current = conn.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version = current
                    try:
                        await self.sync()
                    except Exception:  # noqa: BLE001 - keep watching; drop caches to be safe
                        _log.exception("change_feed_sync_failed")
                        self._publish(ChangeEvent(Topic.EVERYTHING))
        finally:
            conn.close()

    async def _run_postgres(self) -> None:
        import psycopg

        dsn = self._db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    # Anything missed while we were not listening: drop it all, then catch up.
                    self._publish(ChangeEvent(Topic.EVERYTHING))
                    await self.sync()
                    backoff = 0.1
                    while True:
                        # Wake on a notification, or after the backstop interval regardless.
                        async for _notify in conn.notifies(timeout=self._backstop, stop_after=1):
                            pass
                        await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect with backoff; caches were dropped
                _log.warning("change_feed_disconnected", exc_info=True)
                self._publish(ChangeEvent(Topic.EVERYTHING))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
