"""Redis pub/sub between processes: a committed change reaches other processes' caches.

In most tests here the receiving side runs only the Redis subscriber, not the change-feed
watcher, so Redis is the only way the event can arrive: these test Redis, not the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from nevertrust.app import Services, build_services
from nevertrust.bus import ChangeEvent, MemoryBus, Topic
from nevertrust.bus.redis import RedisBus
from nevertrust.clock import FixedClock
from nevertrust.gateway import SessionCache
from nevertrust.identity import Passwords
from nevertrust.server import Runtime
from nevertrust.store.feed import ChangeFeedWatcher

from ._support import PASSWORD, eventually

pytestmark = pytest.mark.redis

EVERYTHING = ChangeEvent(Topic.EVERYTHING)
_BIN = Path(sys.executable).parent / "nevertrust"


@pytest.fixture
def open_replica(
    any_services: Services, redis_url: str, clock: FixedClock, fast_passwords: Passwords
) -> Iterator[Callable[[], Services]]:
    """Open another process's view: same database and master key, Redis configured."""
    opened: list[Services] = []
    settings = any_services.settings.model_copy(update={"redis_url": redis_url})

    def open_() -> Services:
        replica = build_services(settings, clock=clock, passwords=fast_passwords, migrate=False)
        opened.append(replica)
        return replica

    yield open_
    for replica in opened:
        replica.close()


def bus_of(svc: Services) -> RedisBus:
    assert isinstance(svc.bus, RedisBus)
    return svc.bus


@contextlib.asynccontextmanager
async def subscribed(svc: Services) -> AsyncIterator[RedisBus]:
    """Run ``svc``'s Redis subscriber (and nothing else) while the block runs."""
    bus = bus_of(svc)
    task = asyncio.create_task(bus.run())
    try:
        assert await eventually(lambda: bus.subscribed)
        yield bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def subscribers(redis_url: str, channel: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        counts = dict(client.pubsub_numsub(channel))
    return int(counts.get(channel.encode(), 0))


async def test_without_redis_url_the_bus_stays_in_process(any_services: Services) -> None:
    assert isinstance(any_services.bus, MemoryBus)


async def test_a_revocation_in_one_process_empties_the_session_cache_of_another(
    open_replica: Callable[[], Services],
) -> None:
    server, writer = open_replica(), open_replica()
    server.directory.add_user("alice", actor="admin", password=PASSWORD)
    issued = server.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua")
    sessions = SessionCache(max_entries=100)
    server.bus.subscribe(sessions.on_event)

    async with subscribed(server) as bus:
        sessions.put(issued.record.id_hash, issued.record)

        await asyncio.to_thread(writer.sessions.revoke_user_sessions, "alice", actor="cli")

        # No feed watcher runs here: only Redis can have told this process.
        assert await eventually(lambda: sessions.get(issued.record.id_hash) is SessionCache.MISSING)
        assert bus.remote_events >= 1


async def test_own_events_are_delivered_once_not_echoed_back(
    open_replica: Callable[[], Services],
) -> None:
    server, other = open_replica(), open_replica()
    seen: list[ChangeEvent] = []
    server.bus.subscribe(seen.append)

    async with subscribed(server):
        await asyncio.to_thread(server.directory.add_group, "mine", actor="admin")
        # Redis keeps one channel in order: once the other process's marker is here, our
        # own message (published first) has come back too, and must have been skipped.
        await asyncio.to_thread(other.directory.add_group, "marker", actor="admin")
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "marker") in seen)

    assert seen.count(ChangeEvent(Topic.GROUP, "mine")) == 1


async def test_a_cli_process_without_the_control_socket_reaches_the_server_through_redis(
    open_replica: Callable[[], Services], redis_url: str, tmp_path: Path
) -> None:
    server = open_replica()
    alice = server.directory.add_user("alice", actor="admin", password=PASSWORD)
    seen: list[ChangeEvent] = []
    server.bus.subscribe(seen.append)
    settings = server.settings
    # Another home: the CLI finds no control socket, as on another machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env.update(
        NEVERTRUST_HOME=str(tmp_path / "cli-home"),
        NEVERTRUST_DATABASE_URL=settings.effective_database_url,
        NEVERTRUST_SECRET_KEY_FILE=str(settings.effective_secret_key_file.resolve()),
        NEVERTRUST_REDIS_URL=redis_url,
    )

    async with subscribed(server):
        result = await asyncio.to_thread(
            subprocess.run,
            [str(_BIN), "users", "disable", "alice"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / "cli-home" / "run" / "control.sock").exists()

        assert await eventually(lambda: ChangeEvent(Topic.USER_SESSIONS, str(alice.id)) in seen)
        assert ChangeEvent(Topic.USER, str(alice.id)) in seen


async def test_after_losing_its_connection_the_subscriber_drops_everything_and_resumes(
    open_replica: Callable[[], Services], redis_url: str
) -> None:
    server, writer = open_replica(), open_replica()
    seen: list[ChangeEvent] = []
    server.bus.subscribe(seen.append)

    async with subscribed(server) as bus:
        with redis.Redis.from_url(redis_url) as admin:
            assert _kill_client_named(admin, bus.subscriber_name) == 1

        # Whatever was published while disconnected is lost to Redis: drop everything.
        assert await eventually(lambda: EVERYTHING in seen)
        assert await eventually(lambda: bus.subscribed)

        await asyncio.to_thread(writer.directory.add_group, "after", actor="admin")
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "after") in seen)


def _kill_client_named(admin: redis.Redis, name: str) -> int:
    clients: list[dict[str, Any]] = admin.client_list()  # type: ignore[assignment]
    ids = [c["id"] for c in clients if c.get("name") == name]
    for client_id in ids:
        admin.client_kill_filter(_id=client_id)
    return len(ids)


async def test_with_redis_down_writes_commit_and_the_change_feed_still_delivers(
    any_services: Services,
    clock: FixedClock,
    fast_passwords: Passwords,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"unix://{tmp_path / 'stopped-redis.sock'}"
    writer = build_services(
        any_services.settings.model_copy(update={"redis_url": down}),
        clock=clock,
        passwords=fast_passwords,
        migrate=False,
    )
    events: list[ChangeEvent] = []
    watcher = ChangeFeedWatcher(
        db=any_services.db, uow=any_services.uow, publish=events.append, poll_interval=0.01
    )
    watcher.start_position()
    task = asyncio.create_task(watcher.run())
    try:
        with caplog.at_level(logging.WARNING, logger="nevertrust.bus"):
            group = await asyncio.to_thread(writer.directory.add_group, "ops", actor="admin")
        assert any(r.message == "bus_publish_failed" for r in caplog.records)
        assert [g.name for g in any_services.directory.list_groups()] == [group.name]
        assert await eventually(lambda: ChangeEvent(Topic.GROUP, "ops") in events)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()


async def test_the_runtime_subscribes_on_start_and_unsubscribes_on_stop(
    open_replica: Callable[[], Services], redis_url: str
) -> None:
    server, writer = open_replica(), open_replica()
    writer.directory.add_user("alice", actor="admin", password=PASSWORD)
    issued = writer.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua")
    bus = bus_of(server)
    assert subscribers(redis_url, bus.channel) == 0

    runtime = Runtime(server)
    await runtime.start()
    try:
        assert await eventually(lambda: bus.subscribed)
        assert subscribers(redis_url, bus.channel) == 1
        runtime.sessions.put(issued.record.id_hash, issued.record)

        await asyncio.to_thread(writer.sessions.revoke_user_sessions, "alice", actor="cli")

        assert await eventually(
            lambda: runtime.sessions.get(issued.record.id_hash) is SessionCache.MISSING
        )
    finally:
        await runtime.stop()

    assert not bus.subscribed
    assert await eventually(lambda: subscribers(redis_url, bus.channel) == 0)


async def test_changes_a_replica_reads_from_the_feed_are_not_broadcast_again(
    open_replica: Callable[[], Services], peer: Services, redis_url: str
) -> None:
    # ``peer`` has no Redis (say, a CLI configured without it): only the feed carries its
    # writes. Every replica reads the feed itself, so re-publishing what it reads would
    # only multiply each change by the number of replicas.
    peer.directory.add_user("alice", actor="admin", password=PASSWORD)
    issued = peer.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua")
    server = open_replica()
    channel = bus_of(server).channel
    runtime = Runtime(server)
    await runtime.start()
    try:
        assert await eventually(lambda: bus_of(server).subscribed)
        runtime.sessions.put(issued.record.id_hash, issued.record)
        async with AsyncRedis.from_url(redis_url) as client:
            listener = client.pubsub(ignore_subscribe_messages=True)
            await listener.subscribe(channel)

            await asyncio.to_thread(peer.sessions.revoke_user_sessions, "alice", actor="cli")
            assert await eventually(
                lambda: runtime.sessions.get(issued.record.id_hash) is SessionCache.MISSING
            )
            # One channel keeps order: everything sent before our marker arrives first.
            await client.publish(channel, "marker")
            heard: list[bytes] = []
            deadline = asyncio.get_running_loop().time() + 5
            while b"marker" not in heard:
                assert asyncio.get_running_loop().time() < deadline, "no marker came back"
                # None also stands for the (ignored) confirmation of the subscription.
                message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    heard.append(message["data"])
            await listener.aclose()  # type: ignore[no-untyped-call]
    finally:
        await runtime.stop()

    assert heard == [b"marker"]
