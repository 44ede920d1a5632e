"""Forward-auth: nginx ``auth_request`` to NeverTrust against nginx's floor and a toy, in one run.

Starts, in one run, the real platform (``nevertrust up`` in a temporary home, with its
dedicated forward-auth listener), the echo upstream, a toy forward-auth server (a bare
Starlette route on uvicorn that looks a cookie up in a dict) and one nginx (non-daemon,
own prefix, ``worker_processes 1``), then load-tests with wrk, every setup with the same
settings and the same request (Host ``echo.localhost:P`` and the real session cookie):

* ``nginx_return_200``: nginx ``location / { return 200; }``, the floor;
* ``nginx_empty_gif``: the same with ``empty_gif``, what the auth setups answer with once
  allowed (``return`` would run before ``auth_request``: see bench/_nginx.py);
* ``toy_forward_auth``: nginx ``auth_request`` to the toy (keep-alive upstream);
* ``nevertrust_forward_auth``: nginx ``auth_request`` to NeverTrust's dedicated
  forward-auth port: session cache, policy decision, audit record, signed assertion;
* ``nevertrust_forward_auth_main_port``: the same endpoint on NeverTrust's main (uvicorn)
  port, which tells whether the dedicated listener earns its keep;
* ``direct_upstream``: the echo upstream itself;
* ``nevertrust_proxy``: the echo upstream through NeverTrust's built-in proxy.

Setups are measured in turn, the order rotated every round (``--rounds``). Results go to
bench/results/forward_auth.json.

    .venv/bin/python bench/forward_auth.py [--quick] [--rounds N] [--diagnose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from _common import RESULTS_DIR, loadavg, machine, terminate_on_sigterm, write_results
from _diagnose import diagnose, serve_instrumented
from _fa_report import (
    DIRECT,
    NGINX_EMPTY_GIF,
    NGINX_RETURN_200,
    NOTES,
    NT_FA,
    NT_FA_MAIN,
    NT_PROXY,
    TOY,
    Run,
    Tally,
    cpu_text,
    print_table,
    result_row,
    summarise,
)
from _load import Setup, Target, cpu_snapshot, machine_cpu_seconds, run_wrk, settle
from _nginx import AUTH_PATH, NGINX, AuthBackend, Nginx, nginx_version, start_nginx
from _platform import (
    ECHO_APP,
    ECHO_BODY,
    LOOPBACK,
    Platform,
    Procs,
    app_session,
    die_with_parent,
    free_ports,
    start_echo,
    start_platform,
    tail,
    wait_listening,
)

BENCH_DIR = Path(__file__).resolve().parent
COOKIE = "nt_app_session"

ALL_SETUPS = (NGINX_RETURN_200, NGINX_EMPTY_GIF, TOY, NT_FA, NT_FA_MAIN, DIRECT, NT_PROXY)
# Also measured with one connection: latency without queueing behind 49 other requests.
ONE_CONNECTION = (NGINX_RETURN_200, TOY, NT_FA)

# Servers this script runs itself (in child processes)


def serve_toy(port: int) -> None:
    """The toy baseline: one Starlette route that looks the cookie up in a dict.

    uvicorn's defaults (it picks uvloop and httptools when installed; one process), with
    NeverTrust's own logging choices (level warning, no access log) so that logging is
    not what tells the two apart."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    sessions = {os.environ["BENCH_TOY_SESSION"]: "bench"}

    async def auth(request: Request) -> Response:
        user = sessions.get(request.cookies.get(COOKIE, ""))
        return Response(status_code=200 if user else 401)

    app = Starlette(routes=[Route(AUTH_PATH, auth)])
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)


def _start_toy(procs: Procs, session: str) -> tuple[int, int]:
    port = free_ports(1)[0]
    proc = procs.add(
        "toy forward-auth",
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-toy", str(port)],
            env={**os.environ, "BENCH_TOY_SESSION": session},
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        ),
    )
    wait_listening(port, proc, "toy forward-auth server", timeout=30)
    return port, proc.pid


# Setups and their sanity checks


def _expect(
    setup: str,
    url: str,
    headers: dict[str, str],
    *,
    status: int,
    user: str | None = None,
    location: str | None = None,
    body: bytes | None = None,
) -> None:
    """One request by hand, since wrk counts a 302 (or a 200 nobody asked for) as success."""
    with httpx.Client(trust_env=False, timeout=10, follow_redirects=False) as client:
        response = client.get(url, headers=headers)
    got_location = response.headers.get("location", "")
    problems = []
    if response.status_code != status:
        problems.append(f"status {response.status_code}, expected {status}")
    if user is not None and response.headers.get("x-nevertrust-user") != user:
        problems.append(f"user {response.headers.get('x-nevertrust-user')!r}, expected {user!r}")
    if location is not None and not got_location.startswith(location):
        problems.append(f"location {got_location!r}, expected one starting {location!r}")
    if location is None and got_location:
        problems.append(f"unexpected location {got_location!r}")
    if body is not None and response.content != body:
        problems.append(f"body {response.content[:100]!r}, expected {body!r}")
    if problems:
        with_cookie = "with" if COOKIE in headers.get("Cookie", "") else "without"
        raise RuntimeError(f"{setup} ({with_cookie} the cookie): {'; '.join(problems)}")


def _setups(
    platform: Platform,
    nginx: Nginx,
    session: str,
    *,
    echo: tuple[int, int],
    toy_pid: int,
) -> dict[str, Setup]:
    echo_port, echo_pid = echo
    pid = platform.proc.pid
    ngx = nginx.proc.pid
    # The same request everywhere: Host names the app; nginx forwards it in X-Original-URL.
    signed_in = {"Host": platform.host(ECHO_APP), "Cookie": f"{COOKIE}={session}"}
    anonymous = {"Host": platform.host(ECHO_APP)}
    portal = f"http://auth.localhost:{platform.port}/"

    def via_nginx(setup: str, what: str, cpu: dict[str, tuple[int, bool]], **kw: Any) -> Setup:
        url = nginx.url(setup)
        auth = setup not in (NGINX_RETURN_200, NGINX_EMPTY_GIF)
        nevertrust = setup in (NT_FA, NT_FA_MAIN)

        def check() -> None:
            _expect(setup, url, signed_in, status=200, user="bench" if nevertrust else None)
            if auth:  # without the cookie: NeverTrust's 401 with the sign-in Location
                _expect(setup, url, anonymous, status=401, location=portal if nevertrust else None)

        return Setup(Target(setup, url, signed_in, ngx), what, check, cpu, **kw)

    def direct(
        setup: str, url: str, what: str, cpu: dict[str, tuple[int, bool]], **kw: Any
    ) -> Setup:
        gated = setup == NT_PROXY

        def check() -> None:
            _expect(setup, url, signed_in, status=200, body=ECHO_BODY)
            if gated:
                _expect(setup, url, anonymous, status=302, location=portal)

        return Setup(
            Target(setup, url, signed_in, pid if gated else echo_pid), what, check, cpu, **kw
        )

    nginx_cpu = (ngx, True)
    return {
        NGINX_RETURN_200: via_nginx(
            NGINX_RETURN_200, "nginx `return 200` (the floor)", {"nginx": nginx_cpu}
        ),
        NGINX_EMPTY_GIF: via_nginx(
            NGINX_EMPTY_GIF, "nginx `empty_gif`: the auth setups' answer", {"nginx": nginx_cpu}
        ),
        TOY: via_nginx(
            TOY,
            "nginx auth_request -> Starlette/uvicorn cookie-in-a-dict",
            {"nginx": nginx_cpu, "auth": (toy_pid, False)},
        ),
        NT_FA: via_nginx(
            NT_FA,
            "nginx auth_request -> NeverTrust dedicated forward-auth port",
            {"nginx": nginx_cpu, "auth": (pid, False)},
            threads_of=pid,
        ),
        NT_FA_MAIN: via_nginx(
            NT_FA_MAIN,
            "nginx auth_request -> NeverTrust main (uvicorn) port",
            {"nginx": nginx_cpu, "auth": (pid, False)},
            threads_of=pid,
        ),
        DIRECT: direct(
            DIRECT,
            f"http://{LOOPBACK}:{echo_port}/",
            "the echo upstream",
            {"echo": (echo_pid, False)},
        ),
        NT_PROXY: direct(
            NT_PROXY,
            f"http://{LOOPBACK}:{platform.port}/",
            "NeverTrust built-in proxy -> the echo upstream",
            {"nevertrust": (pid, False), "echo": (echo_pid, False)},
            threads_of=pid,
        ),
    }


# Measuring


@dataclass(frozen=True)
class Options:
    quick: bool
    rounds: int
    duration: float
    warmup: float
    latency_duration: float
    connections: int
    threads: int
    nginx_workers: str
    setups: tuple[str, ...]
    diagnose: bool


def _measure_once(setup: Setup, opts: Options, wrk: str) -> Run:
    target = setup.target
    setup.check()
    if opts.warmup > 0:
        run_wrk(
            wrk, target, threads=opts.threads, connections=opts.connections, duration=opts.warmup
        )
        settle(setup)
    print(f"bench: measuring {target.setup} for {opts.duration:g}s", flush=True)
    before, whole_before = cpu_snapshot(setup), machine_cpu_seconds()
    load = run_wrk(
        wrk, target, threads=opts.threads, connections=opts.connections, duration=opts.duration
    )
    whole_after = machine_cpu_seconds()
    settle_s = settle(setup)  # deferred work counts as this setup's CPU
    after = cpu_snapshot(setup)
    cpu = {
        label: (after[label] - before[label]) * 1e6 / load.requests
        for label in before
        if label in after and load.requests
    }
    idle = None
    if whole_before is not None and whole_after is not None:
        total = whole_after[1] - whole_before[1]
        busy = whole_after[0] - whole_before[0]
        idle = 100 * (total - busy) / total if total > 0 else None
    one = None
    if target.setup in ONE_CONNECTION and opts.latency_duration > 0:
        one = run_wrk(wrk, target, threads=1, connections=1, duration=opts.latency_duration)
    setup.check()  # still signed in and still answering the same way afterwards
    return Run(load, cpu, settle_s, one, idle)


def measure(setups: dict[str, Setup], opts: Options, wrk: str) -> dict[str, Tally]:
    """Every setup once per round, the order rotated each round so that no setup always
    runs first (cold) or right after a heavy one."""
    tallies = {name: Tally() for name in setups}
    order = list(setups)
    for round_no in range(opts.rounds):
        shift = round_no % len(order)
        for name in order[shift:] + order[:shift]:
            tally = tallies[name]
            if tally.failed:
                continue
            try:
                run = _measure_once(setups[name], opts, wrk)
            except RuntimeError as exc:
                tally.failed = str(exc)
                print(f"bench: {name} failed: {exc}", file=sys.stderr, flush=True)
                continue
            tally.runs.append(run)
            for m in (run.load, run.one_connection):
                if m is not None and (m.non_2xx or m.errors):
                    tally.failed = (
                        f"wrk saw {m.non_2xx} non-2xx/3xx answers and {m.errors} socket errors"
                    )
            if tally.failed:
                print(f"bench: {name} failed: {tally.failed}", file=sys.stderr, flush=True)
    return tallies


# The run


def _diagnose(
    platform: Platform,
    setup: Setup,
    reference: Setup,
    session: str,
    opts: Options,
    wrk: str,
    workdir: Path,
) -> int:
    """--diagnose: windows and the breakdown (see bench/_diagnose.py); cProfile's top."""
    import pstats

    found = diagnose(
        platform.proc.pid,
        setup,
        token=session,
        host=platform.host(ECHO_APP),
        workdir=workdir,
        wrk=wrk,
        threads=opts.threads,
        connections=opts.connections,
        duration=opts.duration,
        warmup=opts.warmup,
        reference=reference,
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for prof in workdir.glob("*.prof"):
        text = RESULTS_DIR / f"forward_auth_{prof.stem}.txt"
        with text.open("w") as stream:
            stats = pstats.Stats(str(prof), stream=stream)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(50)
        found.setdefault("profiles", []).append(str(text.relative_to(BENCH_DIR.parent)))
    found.update(setup=setup.target.setup, duration_s=opts.duration, machine=machine(None))
    out = write_results("forward_auth_diagnosis", found)
    print(f"\nwhere {setup.target.setup}'s time goes ({opts.duration:g}s per window)")
    print(f"  {'window':<30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}  GC pauses, CPU us/req")
    for name, w in found["windows"].items():
        gcs = ", ".join(
            f"gen{g} {p['count']}x max {p['max_ms']}ms" for g, p in w["gc_pauses"].items()
        )
        cpu = cpu_text(w["cpu_us_per_request"])
        gcs = gcs or ("n/a" if name.startswith("reference") else "none")
        print(
            f"  {name:<30} {w['req_per_s']:>8.0f} {w['p50_ms']:>7.2f} {w['p99_ms']:>7.2f}"
            f"  {gcs or 'none'}; {cpu}"
        )
    print("  one request's pieces (CPU us per call, event-loop thread):")
    for name, value in found["breakdown"]["cpu_us_per_call"].items():
        print(f"    {name:<34} {value}")
    print(f"  written to {out.relative_to(BENCH_DIR.parent)}")
    return 0


def _parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="one short round (under 2 minutes)")
    parser.add_argument("--rounds", type=int, help="times each setup is measured (default 3)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each (default 2)")
    parser.add_argument(
        "--latency-duration",
        type=float,
        help="seconds of the one-connection latency run (default 5; 0: skip)",
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--nginx-workers", default="1", help="nginx worker_processes: a number or auto"
    )
    parser.add_argument(
        "--setups",
        help=f"comma-separated subset of {','.join(ALL_SETUPS)} (default: all)",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help=f"instead of the benchmark: where {NT_FA}'s time goes (GC pauses, what-ifs, "
        "cProfile, the pieces of one request); writes forward_auth_diagnosis.json",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    latency = (
        args.latency_duration if args.latency_duration is not None else (2.0 if args.quick else 5.0)
    )
    setups = tuple(s.strip() for s in args.setups.split(",")) if args.setups else ALL_SETUPS
    if unknown := [s for s in setups if s not in ALL_SETUPS]:
        parser.error(f"unknown setup(s) {', '.join(unknown)}; known: {', '.join(ALL_SETUPS)}")
    if args.diagnose and args.setups is None:
        setups = (NT_FA,)
    if args.diagnose and setups not in ((NT_FA,), (NT_FA_MAIN,)):
        parser.error(f"--diagnose takes --setups {NT_FA} or {NT_FA_MAIN}")
    if not 1 <= rounds <= 20 or not 0 < duration <= 600 or not 0 <= warmup <= 60:
        parser.error("--rounds must be 1..20, --duration in (0, 600], --warmup in [0, 60]")
    if not 0 <= latency <= 600:
        parser.error("--latency-duration must be in [0, 600]")
    if not 1 <= args.connections <= 1000 or not 1 <= args.threads <= args.connections:
        parser.error("--connections must be 1..1000 and --threads 1..connections")
    if args.nginx_workers != "auto" and not args.nginx_workers.isdigit():
        parser.error("--nginx-workers must be a number or auto")
    return Options(
        quick=args.quick,
        rounds=rounds,
        duration=duration,
        warmup=warmup,
        latency_duration=latency,
        connections=args.connections,
        threads=args.threads,
        nginx_workers=args.nginx_workers,
        setups=setups,
        diagnose=args.diagnose,
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nginx": nginx_version(),
        "wrk": (wrk.stdout + wrk.stderr).split("[", 1)[0].replace("wrk", "").strip(),
        "uvicorn": version("uvicorn"),
        "starlette": version("starlette"),
        "uvloop": version("uvloop"),
        "httptools": version("httptools"),
    }


def main(argv: list[str] | None = None) -> int:
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    wrk = shutil.which("wrk")
    missing = [
        name
        for name, path in (("wrk", wrk), ("nginx", NGINX))
        if not path or not Path(path).exists()
    ]
    if missing or wrk is None:
        print(f"bench: forward_auth skipped: {' and '.join(missing)} not installed")
        return 0

    load_before = loadavg()
    started = time.monotonic()
    procs = Procs()
    with terminate_on_sigterm(), tempfile.TemporaryDirectory(prefix="nt-bench-fa-") as tmp:
        log = Path(tmp) / "platform.log"
        nginx: Nginx | None = None
        try:
            echo = start_echo(procs)
            fa_port = free_ports(1)[0]
            workdir = Path(tmp) / "diagnosis"
            command = (
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-instrumented",
                    str(workdir),
                ]
                if opts.diagnose
                else None
            )
            platform = start_platform(
                procs,
                Path(tmp),
                extra_env={"NEVERTRUST_GATEWAY__FORWARD_AUTH_PORT": str(fa_port)},
                command=command,
            )
            wait_listening(fa_port, platform.proc, "the forward-auth listener", timeout=10)
            session = app_session(platform, ECHO_APP, f"http://{LOOPBACK}:{echo[0]}")
            toy_port, toy_pid = _start_toy(procs, session)
            nginx = start_nginx(
                procs,
                Path(tmp) / "nginx",
                workers=opts.nginx_workers,
                floors=[NGINX_RETURN_200, NGINX_EMPTY_GIF],
                auth=[
                    AuthBackend(TOY, toy_port),
                    AuthBackend(NT_FA, fa_port),
                    AuthBackend(NT_FA_MAIN, platform.port),
                ],
            )
            startup_s = time.monotonic() - started
            print(f"bench: everything up in {startup_s:.1f}s (platform pid {platform.proc.pid})")
            every = _setups(platform, nginx, session, echo=echo, toy_pid=toy_pid)
            setups = {name: every[name] for name in ALL_SETUPS if name in opts.setups}
            if opts.diagnose:
                return _diagnose(
                    platform, setups[opts.setups[0]], every[TOY], session, opts, wrk, workdir
                )
            tallies = measure(setups, opts, wrk)
            platform.check_alive()
        except Exception:
            print(f"bench: platform log tail:\n{tail(log)}", file=sys.stderr)
            if nginx is not None:
                print(f"bench: nginx error log:\n{tail(nginx.error_log)}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()

    rows = {name: result_row(name, setups[name], tally) for name, tally in tallies.items()}
    report: dict[str, Any] = {"results": list(rows.values()), **summarise(rows)}
    report.update(
        {
            "tool": "wrk",
            "connections": opts.connections,
            "threads": opts.threads,
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "latency_duration_s": opts.latency_duration,
            "rounds": opts.rounds,
            "quick": opts.quick,
            "nginx": {"worker_processes": opts.nginx_workers, "config": nginx.config},
            "versions": _versions(),
            "notes": NOTES,
            "machine": machine(load_before),
            "startup_s": round(startup_s, 1),
            "wall_s": round(time.monotonic() - started, 1),
        }
    )
    out = write_results("forward_auth", report)
    print_table(report)
    cpus = os.cpu_count() or 1
    busy = max(load_before or 0.0, report["machine"]["loadavg_1m_after"] or 0.0)
    if busy > cpus:
        print(
            f"  note: load average {busy:.1f} on {cpus} CPUs before/after the run: other work "
            "shares the machine; req/s are rough (CPU us/req is steadier)."
        )
    print(
        f"  wall {report['wall_s']:.0f}s (start-up {report['startup_s']:.0f}s);"
        f" written to {out.relative_to(BENCH_DIR.parent)}"
    )
    failed = [row["setup"] for row in report["results"] if row["failed"]]
    if failed:
        print(f"bench: failed setups: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-toy":
        serve_toy(int(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-instrumented":
        serve_instrumented(sys.argv[2])
        sys.exit(0)
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"bench: interrupted ({exc or 'Ctrl-C'}); servers stopped", file=sys.stderr)
        sys.exit(130)
