"""Helpers shared by the benchmark scripts (not a benchmark: run_all skips `_` files)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

__all__ = ["loadavg", "terminate_on_sigterm"]


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into an exception so the finally blocks stop our subprocesses."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def loadavg() -> float | None:
    """The 1-minute load average: other work on the machine makes numbers rough."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
