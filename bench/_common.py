"""Helpers shared by the benchmark scripts (not a benchmark: run_all skips `_` files)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "loadavg", "machine", "terminate_on_sigterm", "write_results"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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


def machine(load_before: float | None) -> dict[str, Any]:
    """What a result was measured on, and how busy the machine was before and after."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": loadavg(),
    }


def write_results(name: str, report: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
