"""The gateway's signer: follows the active signing key without a database read per request.

``SigningKeyRing`` is an ``AssertionSigner`` (the enforcer calls ``sign`` and reads
``ttl_seconds`` as before) whose key is swapped whole when a ``signing-key`` change event
arrives. The reload runs on a thread of its own, never on the request path nor on the
event loop (a database that is slow or down must not stall requests), and a failed reload
keeps the key in use and logs ``signing_key_reload_failed``: the old key stays published
for the rotation's overlap, so signing with it a little longer is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.gateway.assertion import AssertionSigner
from nevertrust.gateway.keys import KeyService, SigningKey

__all__ = ["SigningKeyRing", "maintain_signing_keys"]

_log = logging.getLogger("nevertrust.gateway")
_T = TypeVar("_T")
# EVERYTHING: a watcher lost track of changes, so a rotation may have been missed.
_RELOAD_ON = frozenset({Topic.SIGNING_KEY, Topic.EVERYTHING})


class SigningKeyRing(AssertionSigner):
    """An assertion signer whose key follows the active signing key in storage.

    ``load`` returns the active key (``KeyService.active``); it is called once here,
    where a failure propagates (a gateway with no key cannot start), and then on events.
    """

    def __init__(self, *, load: Callable[[], SigningKey], issuer: str, ttl_seconds: int) -> None:
        super().__init__(key=load(), issuer=issuer, ttl_seconds=ttl_seconds)
        self._load = load
        self._reload_lock = threading.Lock()  # one reload at a time, the newest read wins
        self._state_lock = threading.Lock()
        self._pending = False
        self._worker: threading.Thread | None = None
        self.stale = False  # the last reload failed

    @property
    def kid(self) -> str:
        """The kid new assertions are signed with."""
        return self._key.kid

    def reload(self) -> bool:
        """Load the active key now and sign with it; on failure keep the current one."""
        with self._reload_lock:
            try:
                key = self._load()
            except Exception:  # noqa: BLE001 - keep signing with the key we have
                _log.exception("signing_key_reload_failed")
                self.stale = True
                return False
            if key.kid != self._key.kid:
                _log.info("signing_key_switched", extra={"kid": key.kid})
            # One reference assignment: a concurrent sign() sees the old or the new key,
            # never a mix (kid and private key travel together in SigningKey).
            self._key = key
            self.stale = False
            return True

    def on_event(self, event: ChangeEvent) -> None:
        """Bus subscriber: reload in the background when the active key may have changed.

        Events arrive on the event loop (feed, Redis) and on worker threads (this
        process's commits); either way this returns at once. A burst of events costs one
        or two reloads, not one each.
        """
        if event.topic not in _RELOAD_ON:
            return
        with self._state_lock:
            self._pending = True
            if self._worker is not None:
                return  # the running worker will see _pending and load again
            self._worker = threading.Thread(
                target=self._drain, name="signing-key-reload", daemon=True
            )
            self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._state_lock:
                if not self._pending:
                    self._worker = None
                    return
                self._pending = False
            self.reload()


async def maintain_signing_keys(
    keys: KeyService,
    ring: SigningKeyRing,
    *,
    rotation_days: int,
    overlap_minutes: int,
    every: float = 300.0,
) -> None:
    """Rotate the key when it is ``rotation_days`` old (0: never), checking every ``every``
    seconds, and reload the ring each time as a backstop for a missed event.

    Every replica may run this: ``rotate_if_due`` rotates once however many call it.
    """
    max_age = timedelta(days=rotation_days)
    overlap = timedelta(minutes=overlap_minutes)
    while True:
        try:
            await _in_thread(keys.rotate_if_due, max_age=max_age, overlap=overlap)
        except Exception:  # noqa: BLE001 - retried at the next check; the key stays valid
            _log.exception("signing_key_rotation_failed")
        await _in_thread(ring.reload)
        await asyncio.sleep(every)


async def _in_thread(func: Callable[..., _T], /, **kwargs: Any) -> _T:
    """Run ``func`` on a worker thread; on cancellation, wait for it to finish first.

    Cancelling does not stop the thread: waiting lets its database connection return to
    the pool before the server, shutting down, disposes of the engine.
    """
    work = asyncio.ensure_future(asyncio.to_thread(func, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise
