"""Run every benchmark script in bench/ (each in its own process) and report failures.

    .venv/bin/python bench/run_all.py [--quick]

Every ``bench/*.py`` except this file and helper modules whose names start with ``_`` is
run with the same interpreter, from the repository root, with ``--quick`` passed on when
given. Exits non-zero when any script fails or overruns its time limit.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# A benchmark that runs longer than this is treated as hung: killed and counted as failed.
TIMEOUT_S = {"quick": 300, "full": 1800}


def scripts() -> list[Path]:
    me = Path(__file__).resolve()
    return sorted(
        path
        for path in BENCH_DIR.glob("*.py")
        if path.resolve() != me and not path.name.startswith("_")
    )


def run_one(cmd: list[str], timeout: float) -> str:
    """Run one script; on timeout or Ctrl-C stop it with SIGTERM first, so that it can
    stop the servers it started (SIGKILL only if it does not exit in time)."""
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return f"failed (over {timeout:.0f}s)"
    except BaseException:
        _stop(proc)
        raise
    return "ok" if returncode == 0 else f"failed (exit {returncode})"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark in bench/.")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    args = parser.parse_args(argv)
    timeout = TIMEOUT_S["quick" if args.quick else "full"]

    found = scripts()
    if not found:
        print("run_all: no benchmark scripts found", file=sys.stderr)
        return 1
    outcomes: list[tuple[str, str, float]] = []
    for script in found:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        name = script.relative_to(ROOT).as_posix()
        print(f"run_all: {name}{' --quick' if args.quick else ''}", flush=True)
        started = time.monotonic()
        status = run_one(cmd, timeout)
        outcomes.append((name, status, time.monotonic() - started))

    print("\nrun_all summary:")
    for name, status, elapsed in outcomes:
        print(f"  {name:<28} {status:<22} {elapsed:6.1f}s")
    failed = [name for name, status, _ in outcomes if status != "ok"]
    if failed:
        print(f"run_all: {len(failed)} of {len(outcomes)} failed: {', '.join(failed)}")
        return 1
    print(f"run_all: all {len(outcomes)} passed; results in bench/results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
