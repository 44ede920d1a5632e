"""The audit log service: batched writes from the hot path, verification, reading.

The gateway must not wait for a database write per request, so decisions are queued and
a writer thread appends them in batches. If the queue is full (the database has been
unreachable for a while) ``enqueue`` says so and the gateway refuses the request: an
access that cannot be recorded is not granted.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nevertrust.audit.chain import ChainReport, verify_chain
from nevertrust.audit.models import AuditEntry, SealedRecord
from nevertrust.errors import NeverTrustError

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = ["AuditLog"]

_log = logging.getLogger("nevertrust.audit")


class AuditLog:
    def __init__(self, *, uow: UnitOfWorkFactory, flush_interval: float, queue_limit: int) -> None:
        self._uow = uow
        self._flush_interval = flush_interval
        self._queue_limit = queue_limit
        self._queue: deque[AuditEntry] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._writing = threading.Lock()
        self._inflight = 0
        self.written = 0

    # Hot path

    def enqueue(self, entry: AuditEntry) -> bool:
        """Queue an entry; False when the queue is full and the caller must fail closed."""
        if len(self._queue) >= self._queue_limit:
            return False
        self._queue.append(entry)
        return True

    # Writer

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush_now()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                self.flush_now()
            except NeverTrustError:
                _log.warning("audit_flush_failed", exc_info=True)
                self._stop.wait(min(1.0, self._flush_interval * 10))

    def flush_now(self, *, max_batch: int = 5000) -> int:
        """Write everything queued so far; entries stay queued if the write fails."""
        total = 0
        with self._writing:  # one flusher at a time keeps the queue order = chain order
            while self._queue:
                batch: list[AuditEntry] = []
                while self._queue and len(batch) < max_batch:
                    batch.append(self._queue.popleft())
                self._inflight = len(batch)
                try:
                    with self._uow.write() as uow:
                        uow.audit.append(batch)
                except BaseException:
                    self._queue.extendleft(reversed(batch))
                    raise
                finally:
                    self._inflight = 0
                total += len(batch)
        self.written += total
        with self._flushed:
            self._flushed.notify_all()
        return total

    def wait_flushed(self, timeout: float = 5.0) -> bool:
        # A flusher that has popped its last batch but not yet set _inflight leaves an empty
        # queue and _inflight == 0 for a moment; the held _writing lock still shows it.
        with self._flushed:
            return self._flushed.wait_for(
                lambda: not self._queue and not self._inflight and not self._writing.locked(),
                timeout=timeout,
            )

    @property
    def pending(self) -> int:
        return len(self._queue) + self._inflight

    # Reading

    def append(self, entries: Sequence[AuditEntry]) -> Sequence[SealedRecord]:
        """Write entries now, in their own transaction."""
        with self._uow.write() as uow:
            return uow.audit.append(entries)

    def tail(self, limit: int = 50) -> Sequence[SealedRecord]:
        with self._uow.read() as uow:
            return uow.audit.tail(limit)

    def verify(self) -> ChainReport:
        with self._uow.read() as uow:
            head_seq, head_hash = uow.audit.head()
            return verify_chain(uow.audit.iterate(), head_seq=head_seq, head_hash=head_hash)
