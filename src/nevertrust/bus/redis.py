"""Redis pub/sub fan-out: a change committed by any process reaches every replica at once.

The change feed (store/feed.py) already brings every commit to every server, but it reads
the rows back from the database after being woken; a Redis message carries the event
itself, and Redis has queued it for every subscriber before the writer's ``publish``
returns (so normally before the writing request has answered). The feed stays as the
backstop: whatever Redis loses (an outage, a restart, a full buffer) is still read from
``change_log``, so Redis only makes revocation faster, never makes it happen.

Messages are JSON ``{"origin", "topic", "key"}`` on one channel per deployment, named
from the master key (which every replica shares), so two deployments on one Redis never
see each other's events. They carry no secret; a forged message can only make caches
drop entries (costing database reads), never grant anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.bus.memory import EventHandler, MemoryBus
from nevertrust.crypto import MasterKey

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

__all__ = ["CHANNEL_PREFIX", "RedisBus", "channel_for"]

CHANNEL_PREFIX = "nevertrust:changes:"
_log = logging.getLogger("nevertrust.bus")


def channel_for(master_key: MasterKey) -> str:
    """The deployment's channel: replicas share the master key, other deployments do not."""
    return CHANNEL_PREFIX + master_key.derive("id:redis-channel")[:8].hex()


class RedisBus:
    """Delivers events locally (like ``MemoryBus``) and to every other process via Redis.

    ``publish`` is synchronous: it runs where the commit ran (a worker thread, the CLI), so
    when a write call returns, Redis has already queued its events for every subscriber.
    Each process subscribes with ``run()``, an asyncio task in the serving loop, so remote
    events reach the caches
    on the same thread as requests. A process's own messages come back from Redis and are
    skipped by origin: they were delivered locally when published.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        timeout: float = 0.5,
        heartbeat: float = 5.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self._url = url
        self.channel = channel
        self.origin = os.urandom(8).hex()
        self._local = MemoryBus()
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        # Publishing: after a failure, do not try again (and block a writer) until then.
        self._retry_at = 0.0
        self._publish_backoff = 0.0
        self.publish_failures = 0
        self.remote_events = 0
        self.subscribed = False  # true while the subscription is live (for health and tests)

    @property
    def subscriber_name(self) -> str:
        """The subscriber's name in Redis ``CLIENT LIST``: one per serving process."""
        return f"nevertrust-bus-{self.origin}"

    # The local side: what MemoryBus offers.

    def subscribe(self, handler: EventHandler) -> None:
        self._local.subscribe(handler)

    def publish(self, event: ChangeEvent) -> None:
        """Send to the other processes first (their caches matter more: ours is one of many),
        then deliver here. Never raises for Redis: the write is committed whatever happens."""
        self._send(event)
        self._local.publish(event)

    def deliver(self, event: ChangeEvent) -> None:
        """Deliver here only: for events other processes already have (the change feed's)."""
        self._local.publish(event)

    def _publisher(self) -> redis.Redis:
        if self._client is None:
            # One quick retry covers a pooled connection that Redis closed since (restart,
            # idle timeout); more would hold the writer up while Redis is really away.
            self._client = redis.Redis.from_url(
                self._url,
                socket_connect_timeout=self._timeout,
                socket_timeout=self._timeout,
                retry=Retry(NoBackoff(), 1),
            )
        return self._client

    def _send(self, event: ChangeEvent) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._retry_at:
                self.publish_failures += 1
                return
            client = self._publisher()
        payload = json.dumps(
            {"origin": self.origin, "topic": event.topic.value, "key": event.key},
            separators=(",", ":"),
        )
        try:
            client.publish(self.channel, payload)
        except Exception as exc:  # noqa: BLE001 - the change feed delivers it anyway
            with self._lock:
                self.publish_failures += 1
                self._publish_backoff = min(max(self._publish_backoff * 2, 1.0), 30.0)
                self._retry_at = time.monotonic() + self._publish_backoff
            _log.warning(
                "bus_publish_failed",
                extra={
                    "topic": event.topic.value,
                    "error": type(exc).__name__,
                    "retry_in_s": self._publish_backoff,
                },
            )
        else:
            if self._publish_backoff:
                with self._lock:
                    self._publish_backoff = 0.0

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # The remote side: one subscription per serving process.

    async def run(self) -> None:
        """Subscribe and deliver other processes' events here, until cancelled.

        Reconnects with exponential backoff. Events published while the subscription was
        down are gone from Redis, so after reconnecting every cache here is told to drop
        everything (the change feed has normally caught up with them already).
        """
        from redis.asyncio import Redis as AsyncRedis

        backoff = self._min_backoff
        lost = False
        while True:
            client = AsyncRedis.from_url(
                self._url,
                socket_connect_timeout=max(self._timeout, 1.0),
                socket_keepalive=True,
                retry=Retry(NoBackoff(), 0),
                client_name=self.subscriber_name,
            )
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(self.channel)
                    self.subscribed = True
                    if lost:
                        _log.info("bus_resubscribed")
                        self._local.publish(ChangeEvent(Topic.EVERYTHING))
                    lost = False
                    backoff = self._min_backoff
                    await self._listen(pubsub)
                finally:
                    self.subscribed = False
                    with contextlib.suppress(Exception):
                        # redis-py leaves PubSub.aclose unannotated.
                        close = pubsub.aclose()  # type: ignore[no-untyped-call]
                        await asyncio.wait_for(close, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; the feed covers the gap
                if not lost:
                    _log.warning("bus_subscriber_disconnected", extra={"error": repr(exc)})
                lost = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), timeout=1.0)

    async def _listen(self, pubsub: PubSub) -> None:
        # A PING every heartbeat; silence for three of them means the connection is dead
        # even if TCP has not noticed (a half-open connection never raises by itself).
        last_heard = time.monotonic()
        next_ping = last_heard + self._heartbeat
        while True:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self._heartbeat / 2
            )
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message.get("type") == "message":
                    self._deliver(message.get("data"))
            if now >= next_ping:
                await pubsub.ping()
                next_ping = now + self._heartbeat
            if now - last_heard > 3 * self._heartbeat:
                raise ConnectionError("no answer from Redis to three pings")

    def _deliver(self, data: Any) -> None:
        try:
            body = json.loads(data)
            if body.get("origin") == self.origin:
                return
            event = ChangeEvent(Topic(body["topic"]), str(body.get("key", "")))
        except (TypeError, ValueError, KeyError, AttributeError):
            # Not ours (a foreign or older publisher): ignore rather than guess.
            _log.warning("bus_message_ignored")
            return
        self.remote_events += 1
        self._local.publish(event)
