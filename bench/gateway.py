"""Gateway overhead: a trivial upstream reached directly vs through the NeverTrust gateway.

Starts the real platform (``nevertrust up``) in a temporary home, signs a user in over
HTTP exactly like a browser would, publishes a second app ``echo`` whose upstream is a
tiny HTTP server started here, and then load-tests, in one run:

* ``direct``: the echo upstream itself;
* ``gateway``: ``echo.localhost:PORT`` through NeverTrust with the app session cookie
  (session cache, policy decision, audit record, signed assertion, streaming proxy).

Load comes from wrk when it is installed, otherwise from an asyncio + httpx generator with
the same concurrency. Results go to bench/results/gateway.json.

    .venv/bin/python bench/gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from _common import loadavg, machine, terminate_on_sigterm, write_results
from _load import Measurement, Target, cpu_seconds, run_httpx, run_wrk
from _platform import (
    ECHO_APP,
    ECHO_BODY,
    LOOPBACK,
    Procs,
    app_session,
    start_echo,
    start_platform,
    tail,
)

BENCH_DIR = Path(__file__).resolve().parent


def _check_target(target: Target) -> None:
    """One request by hand: a 302 to the portal would look like success to wrk."""
    with httpx.Client(trust_env=False, timeout=10, follow_redirects=False) as client:
        response = client.get(target.url, headers=target.headers)
    if response.status_code != 200 or response.content != ECHO_BODY:
        raise RuntimeError(
            f"{target.setup}: expected 200 {ECHO_BODY!r}, got {response.status_code} "
            f"{response.content[:200]!r}"
        )


# The run


@dataclass(frozen=True)
class Options:
    quick: bool
    duration: float
    warmup: float
    connections: int
    threads: int
    tool: str


def _parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="short run (about 20 s in all)")
    parser.add_argument("--duration", type=float, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per setup")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--tool", choices=("auto", "wrk", "httpx"), default="auto", help="load generator"
    )
    args = parser.parse_args(argv)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    if duration <= 0 or duration > 600 or warmup < 0 or warmup > 60:
        parser.error("--duration must be in (0, 600] and --warmup in [0, 60]")
    if not 1 <= args.connections <= 1000 or not 1 <= args.threads <= args.connections:
        parser.error("--connections must be 1..1000 and --threads 1..connections")
    return Options(
        quick=args.quick,
        duration=duration,
        warmup=warmup,
        connections=args.connections,
        threads=args.threads,
        tool=args.tool,
    )


def _measure(targets: list[Target], opts: Options, wrk: str | None) -> dict[str, Measurement]:
    def load(target: Target, seconds: float) -> Measurement:
        if wrk is not None:
            return run_wrk(
                wrk, target, threads=opts.threads, connections=opts.connections, duration=seconds
            )
        return run_httpx(target, connections=opts.connections, duration=seconds)

    results: dict[str, Measurement] = {}
    for target in targets:
        _check_target(target)
        if opts.warmup > 0:
            print(f"bench: warming up {target.setup} for {opts.warmup:g}s", flush=True)
            load(target, opts.warmup)
        print(f"bench: measuring {target.setup} for {opts.duration:g}s", flush=True)
        cpu_before = cpu_seconds(target.server_pid)
        measurement = load(target, opts.duration)
        cpu_after = cpu_seconds(target.server_pid)
        if cpu_before is not None and cpu_after is not None and measurement.requests:
            measurement.server_cpu_ms_per_request = (
                (cpu_after - cpu_before) * 1000 / measurement.requests
            )
        results[target.setup] = measurement
        _check_target(target)  # still signed in and still proxying afterwards
    return results


def main(argv: list[str] | None = None) -> int:
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    wrk = shutil.which("wrk") if opts.tool in ("auto", "wrk") else None
    if opts.tool == "wrk" and wrk is None:
        print("bench: --tool wrk given but wrk is not installed", file=sys.stderr)
        return 2
    tool = "wrk" if wrk else "httpx"

    load_before = loadavg()
    procs = Procs()
    started = time.monotonic()
    with terminate_on_sigterm(), tempfile.TemporaryDirectory(prefix="nt-bench-") as tmp:
        log = Path(tmp) / "platform.log"
        try:
            echo_port, echo_pid = start_echo(procs)
            platform = start_platform(procs, Path(tmp))
            print(
                f"bench: platform up on {LOOPBACK}:{platform.port} (pid {platform.proc.pid})",
                flush=True,
            )
            session = app_session(platform, ECHO_APP, f"http://{LOOPBACK}:{echo_port}")
            targets = [
                Target("direct", f"http://{LOOPBACK}:{echo_port}/", {}, echo_pid),
                Target(
                    "gateway",
                    f"http://{LOOPBACK}:{platform.port}/",
                    {"Host": platform.host(ECHO_APP), "Cookie": f"nt_app_session={session}"},
                    platform.proc.pid,
                ),
            ]
            measured = _measure(targets, opts, wrk)
            platform.check_alive()
        except Exception:
            if log.exists():
                print(f"bench: platform log tail:\n{tail(log)}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()

    direct, gateway = measured["direct"], measured["gateway"]
    ratio = gateway.req_per_s / direct.req_per_s if direct.req_per_s else 0.0
    report: dict[str, Any] = {
        "results": [
            {
                "setup": setup,
                "req_per_s": round(m.req_per_s, 1),
                "p50_ms": round(m.p50_ms, 3),
                "p99_ms": round(m.p99_ms, 3),
            }
            for setup, m in measured.items()
        ],
        "ratio_gateway_vs_direct": round(ratio, 4),
        "tool": tool,
        "quick": opts.quick,
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "connections": opts.connections,
        "threads": opts.threads if tool == "wrk" else None,
        "details": {
            setup: {
                "requests": m.requests,
                "non_2xx": m.non_2xx,
                "errors": m.errors,
                # CPU time of the answering process (echo upstream / NeverTrust) divided by
                # the requests: steadier than req/s when the machine is shared.
                "server_cpu_ms_per_request": None
                if m.server_cpu_ms_per_request is None
                else round(m.server_cpu_ms_per_request, 4),
            }
            for setup, m in measured.items()
        },
        "machine": machine(load_before),
        "wall_s": round(time.monotonic() - started, 1),
    }
    out = write_results("gateway", report)

    print(f"\ngateway overhead ({tool}, {opts.connections} connections, {opts.duration:g}s each)")
    print(f"  {'setup':<8} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'failed':>7}  server CPU/req")
    for setup, m in measured.items():
        cpu = (
            "n/a"
            if m.server_cpu_ms_per_request is None
            else f"{m.server_cpu_ms_per_request * 1000:.0f} us"
        )
        print(
            f"  {setup:<8} {m.req_per_s:>10.1f} {m.p50_ms:>9.2f} {m.p99_ms:>9.2f}"
            f" {m.non_2xx + m.errors:>7}  {cpu}"
        )
    print(f"  gateway/direct req/s: {ratio:.3f} ({ratio * 100:.1f}%)")
    cpus = os.cpu_count() or 1
    busy = max(load_before or 0.0, report["machine"]["loadavg_1m_after"] or 0.0)
    if busy > cpus:
        print(
            f"  note: load average {busy:.1f} on {cpus} CPUs before/after the run; other work "
            "shares the machine, so treat req/s as rough (server CPU/req is steadier)."
        )
    if tool == "httpx":
        print(
            "  note: the httpx load generator (wrk is not installed) is itself the limit for "
            "'direct'; the ratio is not comparable to wrk runs."
        )
    print(f"  written to {out.relative_to(BENCH_DIR.parent)}")

    failed = {s: m for s, m in measured.items() if m.non_2xx + m.errors > 0.01 * max(1, m.requests)}
    if failed:
        print(f"bench: more than 1% failed requests in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"bench: interrupted ({exc or 'Ctrl-C'}); servers stopped", file=sys.stderr)
        sys.exit(130)
