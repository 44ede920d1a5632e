"""The change feed: writes by other processes become events on this process's bus.

SQLite is watched through ``PRAGMA data_version``, PostgreSQL through LISTEN/NOTIFY. The
waits below are bounds on correctness (the event must come), not performance assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.store.feed import ChangeFeedWatcher
from nevertrust.store.tables import change_log

from ._support import eventually, finish, peer_process

EVERYTHING = ChangeEvent(Topic.EVERYTHING)


def new_watcher(svc: Services, events: list[ChangeEvent]) -> ChangeFeedWatcher:
    # A long backstop: on PostgreSQL only a NOTIFY can wake the watcher within the test.
    return ChangeFeedWatcher(
        db=svc.db, uow=svc.uow, publish=events.append, poll_interval=0.01, backstop_interval=60
    )


@contextlib.asynccontextmanager
async def watching(
    svc: Services, watcher: ChangeFeedWatcher, events: list[ChangeEvent]
) -> AsyncIterator[None]:
    task = asyncio.create_task(watcher.run())
    try:
        if not svc.db.is_sqlite:  # connected and LISTENing once it has dropped everything
            assert await eventually(lambda: EVERYTHING in events)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_change_through_another_connection_arrives_as_an_event(
    any_services: Services, peer: Services
) -> None:
    events: list[ChangeEvent] = []
    watcher = new_watcher(any_services, events)
    watcher.start_position()

    async with watching(any_services, watcher, events):
        group = await asyncio.to_thread(peer.directory.add_group, "ops", actor="cli")
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, group.name) in events)

        alice = await asyncio.to_thread(peer.directory.add_user, "alice", actor="cli")
        await asyncio.to_thread(peer.directory.set_enabled, "alice", False, actor="cli")
        wanted = ChangeEvent(Topic.USER_SESSIONS, str(alice.id))
        assert await eventually(lambda: wanted in events)

    real = [e for e in events if e != EVERYTHING]
    assert real == [
        ChangeEvent(Topic.GROUP, "ops"),
        ChangeEvent(Topic.USER, str(alice.id)),
        ChangeEvent(Topic.USER, str(alice.id)),
        ChangeEvent(Topic.USER_SESSIONS, str(alice.id)),
    ]


async def test_a_change_by_another_process_arrives_as_an_event(any_services: Services) -> None:
    events: list[ChangeEvent] = []
    watcher = new_watcher(any_services, events)
    watcher.start_position()

    async with watching(any_services, watcher, events):
        process = peer_process(any_services, "svc.directory.add_group('from-cli', actor='cli')")
        await asyncio.to_thread(finish, process)
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "from-cli") in events)


async def test_a_change_made_before_the_watcher_runs_is_not_lost(
    any_services: Services, peer: Services
) -> None:
    # Runtime.start() fixes the feed position, builds state, then starts watching: a change
    # committed in between must still be delivered.
    events: list[ChangeEvent] = []
    watcher = new_watcher(any_services, events)
    watcher.start_position()
    peer.directory.add_group("in-between", actor="cli")

    async with watching(any_services, watcher, events):
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "in-between") in events)


async def test_changes_before_the_start_position_are_not_replayed(
    any_services: Services, peer: Services
) -> None:
    peer.directory.add_group("old", actor="cli")
    events: list[ChangeEvent] = []
    watcher = new_watcher(any_services, events)

    watcher.start_position()
    assert await watcher.sync() == 0
    peer.directory.add_group("new", actor="cli")
    assert await watcher.sync() == 1

    assert events == [ChangeEvent(Topic.GROUP, "new")]
    assert watcher.events_seen == 1


@pytest.mark.postgres
async def test_a_lost_listen_connection_drops_everything_and_reconnects(
    pg_services: Services, open_peer_pg: Services
) -> None:
    events: list[ChangeEvent] = []
    watcher = ChangeFeedWatcher(
        db=pg_services.db,
        uow=pg_services.uow,
        publish=events.append,
        poll_interval=0.01,
        backstop_interval=60,
    )
    watcher.start_position()

    async with watching(pg_services, watcher, events):
        events.clear()
        with pg_services.db.engine.begin() as conn:
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            ).all()
        assert len(killed) == 1
        # Whatever was missed while disconnected is unknown: every cache must drop all.
        assert await eventually(lambda: EVERYTHING in events)

        await asyncio.to_thread(open_peer_pg.directory.add_group, "after", actor="cli")
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "after") in events)


async def test_cancelling_a_sync_waits_for_its_database_read(any_services: Services) -> None:
    # Runtime.stop() cancels the watcher and Services.close() then disposes the engine: a
    # pull still running in its thread would outlive both, holding a connection.
    watcher = new_watcher(any_services, [])
    watcher.start_position()
    now = datetime.now(UTC)
    with any_services.db.engine.begin() as conn:
        conn.execute(
            insert(change_log),
            [{"topic": "group", "key": f"g{n}", "created_at": now} for n in range(50_000)],
        )
    pool = any_services.db.engine.pool

    task = asyncio.create_task(watcher.sync())
    assert await eventually(lambda: pool.checkedout() == 1)  # type: ignore[attr-defined]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert pool.checkedout() == 0  # type: ignore[attr-defined]
