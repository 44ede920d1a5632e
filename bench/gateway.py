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
import asyncio
import contextlib
import ctypes
import html
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from _common import loadavg, machine, terminate_on_sigterm, write_results

BENCH_DIR = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
BASE_DOMAIN = "localhost"
USER = "bench"
PASSWORD = "bench-password-not-secret"
ECHO_APP = "echo"
DEMO_APP = "whoami"
ECHO_BODY = b"ok"
WRK_TIMEOUT_S = 10


# The echo upstream: a raw asyncio HTTP/1.1 server (keep-alive, pipelining, requests with
# small bodies). It is deliberately as cheap as possible, so "direct" measures the load
# generator and the loopback, and the gap to "gateway" is the gateway's own cost.

_ECHO_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
    len(ECHO_BODY),
    ECHO_BODY,
)
_ECHO_UNSUPPORTED = (
    b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_CONN_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class _EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > 65536:
                    transport.close()
                return
            head = self._buffer[: end + 2]
            if _CHUNKED.search(head):
                transport.write(_ECHO_UNSUPPORTED)
                transport.close()
                return
            match = _CONTENT_LENGTH.search(head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            transport.write(_ECHO_RESPONSE)
            if _CONN_CLOSE.search(head):
                transport.close()
                return


async def _serve_echo(ready_fd: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, LOOPBACK, 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    os.write(ready_fd, f"{port}\n".encode())
    os.close(ready_fd)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def run_echo_server(ready_fd: int) -> None:
    try:
        import uvloop  # optional speed-up; uvicorn uses it too
    except ImportError:
        asyncio.run(_serve_echo(ready_fd))
    else:
        uvloop.run(_serve_echo(ready_fd))


# Process management


@dataclass
class Procs:
    """Every subprocess we start, so that ``stop_all`` can end them whatever happened."""

    items: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def add(self, name: str, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.items.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _name, proc in reversed(self.items):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in reversed(self.items):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"bench: {name} ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(timeout=5)
        self.items.clear()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the bench dies without cleaning up
    (SIGKILL, crash). Linux only; elsewhere the finally blocks have to do."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port_pair() -> int:
    """A port P with P and P+1 free on loopback (the platform and its demo upstream)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((LOOPBACK, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((LOOPBACK, port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free pair of loopback ports found")


def _platform_env(home: Path, port: int) -> dict[str, str]:
    # Start from a clean slate: an outer NEVERTRUST_* (say, a PostgreSQL URL) must not
    # leak into the benchmark.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env.update(
        {
            "NEVERTRUST_HOME": str(home),
            "NEVERTRUST_PORT": str(port),
            "NEVERTRUST_BIND": LOOPBACK,
            "NEVERTRUST_BASE_DOMAIN": BASE_DOMAIN,
            "NEVERTRUST_LOG_LEVEL": "warning",
        }
    )
    return env


def _nevertrust_exe() -> str:
    beside = Path(sys.executable).parent / "nevertrust"
    if beside.exists():
        return str(beside)
    found = shutil.which("nevertrust")
    if found is None:
        raise RuntimeError("cannot find the nevertrust command (run with .venv/bin/python)")
    return found


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [_nevertrust_exe(), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"nevertrust {' '.join(args)} failed ({result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"nevertrust up exited with {proc.returncode}:\n{_tail(log)}")
            try:
                response = client.get(
                    f"http://{LOOPBACK}:{port}/healthz",
                    headers={"host": f"auth.{BASE_DOMAIN}:{port}"},
                )
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"platform not healthy after {timeout:.0f}s:\n{_tail(log)}")


def _start_echo(procs: Procs) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    try:
        proc = procs.add(
            "echo upstream",
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve-echo", str(write_fd)],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            ),
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        readable, _, _ = select.select([ready], [], [], 30)
        # The child writes its port in one go, then closes; EOF means it died.
        line = ready.readline().strip() if readable else b""
    if not line or proc.poll() is not None:
        raise RuntimeError("echo upstream failed to start")
    return int(line), proc.pid


# Signing in, like a browser


class Browser:
    """Per-host httpx clients on loopback; the Host header picks the virtual host.

    Each host keeps its own cookie jar, which is what host-only cookies mean in a browser.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._clients: dict[str, httpx.Client] = {}

    def client(self, host: str) -> httpx.Client:
        if host not in self._clients:
            self._clients[host] = httpx.Client(
                base_url=f"http://{LOOPBACK}:{self.port}",
                headers={"host": host, "user-agent": "nevertrust-bench"},
                follow_redirects=False,
                trust_env=False,
                timeout=15,
            )
        return self._clients[host]

    def host(self, name: str) -> str:
        return f"{name}.{BASE_DOMAIN}:{self.port}"

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def _resolve(self, location: str, current: str) -> tuple[str, str]:
        parts = urlsplit(location)
        host = current
        if parts.netloc:
            hostname = (parts.hostname or "").lower()
            if parts.port != self.port or not (
                hostname == BASE_DOMAIN or hostname.endswith("." + BASE_DOMAIN)
            ):
                raise RuntimeError(f"refusing to follow a redirect off the platform: {location}")
            host = parts.netloc.lower()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return host, target

    def navigate(
        self,
        host: str,
        target: str,
        *,
        method: str = "GET",
        data: dict[str, str] | None = None,
        max_hops: int = 10,
    ) -> tuple[str, httpx.Response]:
        """Request and follow redirects across hosts; returns the final host and response."""
        for _ in range(max_hops):
            response = self.client(host).request(method, target, data=data)
            if response.status_code not in (301, 302, 303, 307, 308):
                return host, response
            host, target = self._resolve(response.headers["location"], host)
            method, data = "GET", None
        raise RuntimeError(f"too many redirects from {host}{target}")

    def sign_in(self, app: str) -> None:
        """First sign-in: app -> portal login form -> POST /login -> back to the app."""
        host, page = self.navigate(self.host(app), "/")
        if page.status_code != 200 or 'action="/login"' not in page.text:
            raise RuntimeError(f"expected the login form, got {page.status_code} from {host}")
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
        for name in ("csrf_token", "rd", "state"):
            if name not in fields:
                raise RuntimeError(f"login form lacks the {name} field")
        if "nt_csrf" not in self.client(host).cookies:
            raise RuntimeError("portal did not set the nt_csrf cookie")
        form = {
            "csrf_token": html.unescape(fields["csrf_token"]),
            "rd": html.unescape(fields["rd"]),
            "state": html.unescape(fields["state"]),
            "username": USER,
            "password": PASSWORD,
        }
        host, done = self.navigate(host, "/login", method="POST", data=form)
        if host != self.host(app) or done.status_code != 200:
            raise RuntimeError(f"sign-in ended at {host} with {done.status_code}")

    def hand_off(self, app: str) -> str:
        """Already signed in at the portal: visit another app; returns its session cookie."""
        host, done = self.navigate(self.host(app), "/")
        if host != self.host(app) or done.status_code != 200:
            raise RuntimeError(f"hand-off to {app} ended at {host} with {done.status_code}")
        cookie = self.client(host).cookies.get("nt_app_session")
        if not cookie:
            raise RuntimeError(f"no nt_app_session cookie for {app}")
        return str(cookie)


# Load generation


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


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields after the command name
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _percentile(sorted_values: list[float], pct: float) -> float:
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
        p50_ms=_percentile(ordered, 50) * 1000,
        p99_ms=_percentile(ordered, 99) * 1000,
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


def _parse_args(argv: list[str]) -> Options | int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="short run (about 20 s in all)")
    parser.add_argument("--duration", type=float, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per setup")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--tool", choices=("auto", "wrk", "httpx"), default="auto", help="load generator"
    )
    parser.add_argument("--serve-echo", type=int, metavar="FD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo is not None:
        run_echo_server(args.serve_echo)
        return 0
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
        cpu_before = _cpu_seconds(target.server_pid)
        measurement = load(target, opts.duration)
        cpu_after = _cpu_seconds(target.server_pid)
        if cpu_before is not None and cpu_after is not None and measurement.requests:
            measurement.server_cpu_ms_per_request = (
                (cpu_after - cpu_before) * 1000 / measurement.requests
            )
        results[target.setup] = measurement
        _check_target(target)  # still signed in and still proxying afterwards
    return results


def main(argv: list[str] | None = None) -> int:
    parsed = _parse_args(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, int):
        return parsed
    opts = parsed
    wrk = shutil.which("wrk") if opts.tool in ("auto", "wrk") else None
    if opts.tool == "wrk" and wrk is None:
        print("bench: --tool wrk given but wrk is not installed", file=sys.stderr)
        return 2
    tool = "wrk" if wrk else "httpx"

    load_before = loadavg()
    procs = Procs()
    browser: Browser | None = None
    started = time.monotonic()
    with terminate_on_sigterm(), tempfile.TemporaryDirectory(prefix="nt-bench-") as tmp:
        home = Path(tmp) / "home"
        log = Path(tmp) / "platform.log"
        try:
            port = _free_port_pair()
            env = _platform_env(home, port)
            with log.open("wb") as log_file:
                platform_proc = procs.add(
                    "nevertrust up",
                    subprocess.Popen(
                        [_nevertrust_exe(), "up"],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,
                    ),
                )
            echo_port, echo_pid = _start_echo(procs)
            _wait_healthy(port, platform_proc, log, timeout=60)
            print(f"bench: platform up on {LOOPBACK}:{port} (pid {platform_proc.pid})", flush=True)

            _cli(env, "users", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
            _cli(env, "groups", "add-member", "admins", USER)
            _cli(env, "apps", "add", ECHO_APP, "--upstream", f"http://{LOOPBACK}:{echo_port}")
            _cli(env, "apps", "allow", ECHO_APP, "--group", "admins")

            browser = Browser(port)
            browser.sign_in(DEMO_APP)
            session = browser.hand_off(ECHO_APP)

            targets = [
                Target("direct", f"http://{LOOPBACK}:{echo_port}/", {}, echo_pid),
                Target(
                    "gateway",
                    f"http://{LOOPBACK}:{port}/",
                    {"Host": browser.host(ECHO_APP), "Cookie": f"nt_app_session={session}"},
                    platform_proc.pid,
                ),
            ]
            measured = _measure(targets, opts, wrk)
            if platform_proc.poll() is not None:
                raise RuntimeError(f"the platform died during the run:\n{_tail(log)}")
        except Exception:
            if log.exists():
                print(f"bench: platform log tail:\n{_tail(log)}", file=sys.stderr)
            raise
        finally:
            if browser is not None:
                browser.close()
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
