"""Failure counters for brute-force regulation, over the ``limits`` library.

Process memory by default (one server); Redis when ``redis_url`` is set, so that every
replica counts the same failures: an attacker spreading guesses over replicas gains nothing.
The moving window (a list of timestamps per key) counts exactly the failures of the last
``find_time``, with no burst at a fixed window's edge.

``limits`` reads wall-clock time itself; windows are therefore real seconds, while ban
expiry (in ``identity.regulation``) follows the services' clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey
from nevertrust.identity.regulation import Limit, RegulationPolicy, RegulationUnavailable, Regulator
from nevertrust.settings import RegulationSettings, Settings

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = [
    "LimitsFailureCounter",
    "build_regulator",
    "key_prefix_for",
    "open_failure_counter",
    "policy_from",
]

# A login waits at most this long for Redis before failing closed.
_REDIS_TIMEOUT_SECONDS = 1.0


class LimitsFailureCounter:
    """``identity.regulation.FailureCounter`` over a ``limits`` storage."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    @staticmethod
    def _item(limit: Limit) -> RateLimitItem:
        return RateLimitItemPerSecond(limit.max_retries, limit.find_seconds)

    def check(self) -> None:
        if not self.storage.check():
            raise RegulationUnavailable("the failure-counter store does not answer")

    def hit(self, key: str, limit: Limit) -> int:
        item = self._item(limit)
        try:
            self._limiter.hit(item, key)
            # A full window refuses the hit; either way the count is what the window holds.
            stats = self._limiter.get_window_stats(item, key)
        except StorageError as exc:
            raise RegulationUnavailable("cannot count a sign-in failure") from exc
        return item.amount - stats.remaining

    def clear(self, key: str, limit: Limit) -> None:
        try:
            self._limiter.clear(self._item(limit), key)
        except StorageError as exc:
            raise RegulationUnavailable("cannot clear sign-in failures") from exc

    def close(self) -> None:
        if isinstance(self.storage, RedisStorage):
            self.storage.storage.close()
        elif isinstance(self.storage, MemoryStorage):
            self.storage.timer.cancel()  # its expiry sweeper; harmless, but a thread


def open_failure_counter(redis_url: str, *, key_prefix: str) -> LimitsFailureCounter:
    """Redis-backed counters for ``redis_url``, or this process's memory when it is empty.

    Nothing connects here: an unreachable Redis shows at the first sign-in, which it
    refuses (fail closed), rather than stopping the server from starting.
    """
    if not redis_url:
        return LimitsFailureCounter(MemoryStorage())
    storage = RedisStorage(
        redis_url,
        key_prefix=key_prefix,
        wrap_exceptions=True,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
    )
    return LimitsFailureCounter(storage)


def policy_from(settings: RegulationSettings) -> RegulationPolicy:
    return RegulationPolicy(
        enabled=settings.enabled,
        user=Limit(
            max_retries=settings.max_retries,
            find_time=timedelta(seconds=settings.find_time_seconds),
            ban_time=timedelta(seconds=settings.ban_time_seconds),
        ),
        ip=Limit(
            max_retries=settings.ip_max_retries,
            find_time=timedelta(seconds=settings.ip_find_time_seconds),
            ban_time=timedelta(seconds=settings.ip_ban_time_seconds),
        ),
    )


def key_prefix_for(master_key: MasterKey) -> str:
    """The deployment's key prefix: replicas share the master key, other deployments do not."""
    return "nevertrust:regulation:" + master_key.derive("id:regulation-keys")[:8].hex()


def build_regulator(
    settings: Settings, *, uow: UnitOfWorkFactory, clock: Clock, master_key: MasterKey
) -> Regulator:
    """The regulator ``settings`` describe: shared through Redis when ``redis_url`` is set."""
    prefix = settings.regulation.key_prefix or key_prefix_for(master_key)
    return Regulator(
        uow=uow,
        clock=clock,
        counter=open_failure_counter(settings.redis_url, key_prefix=prefix),
        policy=policy_from(settings.regulation),
    )
