"""Load generation for the HTTP benchmarks (not a benchmark itself: run_all skips `_` files).

wrk when installed (its latency percentiles come from ``--latency``), otherwise an asyncio +
httpx generator with the same number of connections; and CPU time of the processes that
answer, read from /proc, which moves less than req/s when the machine is shared.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "Measurement",
    "Setup",
    "Target",
    "cpu_seconds",
    "cpu_snapshot",
    "machine_cpu_seconds",
    "parse_wrk",
    "percentile",
    "run_httpx",
    "run_wrk",
    "settle",
    "thread_cpu_seconds",
]

WRK_TIMEOUT_S = 10


@dataclass(frozen=True)
class Target:
    setup: str
    url: str
    headers: dict[str, str]
    server_pid: int  # the process answering: its CPU time per request is reported too


@dataclass
class Measurement:
    req_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    server_cpu_ms_per_request: float | None = None


# CPU time from /proc


def _user_system(stat_path: Path) -> tuple[int, int] | None:
    try:
        stat = stat_path.read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields after the command name
    return int(fields[11]), int(fields[12])  # utime, stime (clock ticks)


def _ticks(stat_path: Path) -> int | None:
    found = _user_system(stat_path)
    return None if found is None else sum(found)


def cpu_seconds(pid: int, *, children: bool = False) -> float | None:
    """User + system CPU time of a process (all its threads), plus that of its live child
    processes when ``children`` (nginx: master and workers); None without /proc."""
    ticks = _ticks(Path(f"/proc/{pid}/stat"))
    if ticks is None:
        return None
    if children:
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids = task.read_text().split()
            except OSError:
                continue
            ticks += sum(_ticks(Path(f"/proc/{kid}/stat")) or 0 for kid in kids)
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float] | None:
    """CPU seconds of a process split into its main thread (the event loop), that thread's
    time in the kernel (syscalls: socket reads and writes, epoll, loopback TCP), and the
    other threads (audit writer, worker threads); None without /proc."""
    main = _user_system(Path(f"/proc/{pid}/task/{pid}/stat"))
    total = _ticks(Path(f"/proc/{pid}/stat"))
    if main is None or total is None:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    # The process total also counts threads that have exited; the difference is theirs.
    return {
        "main": sum(main) / hz,
        "main_kernel": main[1] / hz,
        "other_threads": (total - sum(main)) / hz,
    }


# Setups: what is loaded, and which processes answer it


@dataclass(frozen=True)
class Setup:
    target: Target
    what: str
    check: Callable[[], None]
    cpu: dict[str, tuple[int, bool]]  # label -> (pid, count its child processes too)
    threads_of: int | None = None  # report this process's main thread apart from the rest


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, all CPUs, from
    /proc/stat: busy is everything but idle and iowait (kernel networking included)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def cpu_snapshot(setup: Setup) -> dict[str, float]:
    """CPU seconds so far of the setup's processes, of wrk (our waited-for children) and
    of the whole machine (which includes other work sharing it)."""
    out: dict[str, float] = {}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["wrk"] = usage.ru_utime + usage.ru_stime
    whole = machine_cpu_seconds()
    if whole is not None:
        out["machine"] = whole[0]
    for label, (pid, children) in setup.cpu.items():
        value = cpu_seconds(pid, children=children)
        if value is not None:
            out[label] = value
    if setup.threads_of is not None:
        split = thread_cpu_seconds(setup.threads_of)
        if split is not None:
            prefix = "auth_" if "auth" in setup.cpu else ""
            out[prefix + "main_thread"] = split["main"]
            out[prefix + "main_thread_kernel"] = split["main_kernel"]
            out[prefix + "other_threads"] = split["other_threads"]
    return out


def settle(setup: Setup, timeout: float = 30.0) -> float:
    """Wait until the setup's servers are idle, so work they deferred (the audit writer
    catching up) is charged to this setup, not to the next one's measurement."""
    started = time.monotonic()
    pids = list(setup.cpu.values())
    while time.monotonic() - started < timeout:
        before = sum(cpu_seconds(pid, children=kids) or 0.0 for pid, kids in pids)
        time.sleep(0.25)
        after = sum(cpu_seconds(pid, children=kids) or 0.0 for pid, kids in pids)
        if after - before < 0.025:  # under 10% of one core
            break
    return time.monotonic() - started


# wrk

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_WRK_PCT = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> Measurement:
    rps = _WRK_RPS.search(output)
    pcts = {pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _WRK_PCT.findall(output)}
    if rps is None or "50" not in pcts or "99" not in pcts:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    total = _WRK_TOTAL.search(output)
    non2xx = _WRK_NON2XX.search(output)
    sock = _WRK_SOCKET.search(output)
    return Measurement(
        req_per_s=float(rps.group(1)),
        p50_ms=pcts["50"],
        p99_ms=pcts["99"],
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(n) for n in sock.groups()) if sock else 0,
    )


def run_wrk(
    wrk: str, target: Target, *, threads: int, connections: int, duration: float
) -> Measurement:
    """One wrk run. Note wrk's "Non-2xx or 3xx" counts statuses >= 400 only: a 302 to the
    sign-in looks like success, which is why the scripts check one request by hand."""
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    # wrk's default 2 s timeout drops slow answers from the latency figures; count them.
    cmd.append(f"--timeout={WRK_TIMEOUT_S}s")
    for name, value in target.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(target.url)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    return parse_wrk(result.stdout)


# The httpx fallback


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _httpx_load(target: Target, *, connections: int, duration: float) -> Measurement:
    """``connections`` workers, each with its own one-connection client, like wrk's
    connections. (One shared pool of 50 is much slower: httpcore's pool bookkeeping is
    quadratic in the number of connections.)"""
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        async with httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=10,
            trust_env=False,
            headers=target.headers,
        ) as client:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    response = await client.get(target.url)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    await asyncio.sleep(0.01)  # no hot loop against a dead server
                    continue
                latencies.append(time.perf_counter() - began)
                if not 200 <= response.status_code < 400:
                    counts["non_2xx"] += 1

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    try:
        # Each worker stops at the deadline; the timeout only bounds a stuck request.
        await asyncio.wait_for(asyncio.gather(*workers), timeout=duration + 15)
    finally:
        for task in workers:
            task.cancel()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return Measurement(
        req_per_s=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        requests=len(latencies),
        non_2xx=counts["non_2xx"],
        errors=counts["errors"],
    )


def run_httpx(target: Target, *, connections: int, duration: float) -> Measurement:
    return _run_async(_httpx_load(target, connections=connections, duration=duration))


def _run_async(coro: Coroutine[Any, Any, Measurement]) -> Measurement:
    try:
        import uvloop  # the faster loop, when installed
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
