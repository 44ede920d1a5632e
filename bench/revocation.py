"""Time to revoke: how soon after a revocation starts does another replica refuse the session?

Starts two replicas of the real platform (``nevertrust up`` twice, different ports, one
PostgreSQL database, one master key, one public port as behind a load balancer), then for
each sample:

1. signs the user ``victim`` in through replica B like a browser (a fresh portal session
   and a fresh app session for the demo app ``whoami``), and warms B's cache with it;
2. revokes every session of ``victim`` through replica A (``POST /api/v1/sessions/revoke``
   as an admin; ``--revoke-via service`` calls the service layer in this process instead,
   which is a third replica, like the CLI) while polling B with the app cookie, as fast
   as one keep-alive connection allows, until B refuses (a redirect to the sign-in);
3. records time-to-revoke = start of the revoke call -> arrival of B's first refusal.

It measures twice in one run: with Redis pub/sub (``redis_url`` set), then, with both
replicas restarted without Redis, the baseline: PostgreSQL LISTEN/NOTIFY through the
change feed only. PostgreSQL and Redis come from ``--postgres-url`` / ``--redis-url`` or
NEVERTRUST_TEST_POSTGRES_URL / NEVERTRUST_TEST_REDIS_URL; without them the script says so
and exits 0. A database of its own is created on that server and dropped afterwards.
Results go to bench/results/revocation.json.

    .venv/bin/python bench/revocation.py [--quick] [--samples N] [--revoke-via api|service]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text

from _common import loadavg, machine, terminate_on_sigterm, write_results
from _platform import BASE_DOMAIN, LOOPBACK, die_with_parent, free_ports, nevertrust_exe, tail

BENCH_DIR = Path(__file__).resolve().parent
APP = "whoami"
ADMIN, VICTIM = "operator", "victim"
PASSWORD = "bench-password-not-secret"
GOAL_P99_MS = 100.0


# Processes


@dataclass
class Replica:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [nevertrust_exe(), "up"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + 60
        with httpx.Client(trust_env=False, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail}")
                with contextlib.suppress(httpx.TransportError):
                    response = client.get(
                        f"http://{LOOPBACK}:{self.port}/healthz",
                        headers={"host": f"auth.{BASE_DOMAIN}"},
                    )
                    if response.status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy after 60 s:\n{self.tail}")

    @property
    def tail(self) -> str:
        return tail(self.log)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"bench: {self.name} ignored SIGTERM; killing it", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Cluster:
    """Two replicas behind an imaginary load balancer on ``public_port``."""

    public_port: int
    a: Replica
    b: Replica
    cli_env: dict[str, str]
    settings_env: dict[str, str]  # what a third replica (this process) is configured with

    def host(self, name: str) -> str:
        return f"{name}.{BASE_DOMAIN}:{self.public_port}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [nevertrust_exe(), *args],
            env=self.cli_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"nevertrust {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self) -> None:
        self.b.stop()
        self.a.stop()


def _cluster(tmp: Path, database_url: str, redis_url: str) -> Cluster:
    tmp.mkdir(parents=True, exist_ok=True)
    public_port, port_a, port_b, demo_a, demo_b = free_ports(5)
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    shared = {
        "NEVERTRUST_DATABASE_URL": database_url,
        "NEVERTRUST_REDIS_URL": redis_url,
        "NEVERTRUST_SECRET_KEY_FILE": str(tmp / "secret.key"),
        "NEVERTRUST_PUBLIC_PORT": str(public_port),
        "NEVERTRUST_BIND": LOOPBACK,
        "NEVERTRUST_BASE_DOMAIN": BASE_DOMAIN,
        "NEVERTRUST_LOG_LEVEL": "warning",
    }

    def env(home: str, **extra: str) -> dict[str, str]:
        return {**base, **shared, "NEVERTRUST_HOME": str(tmp / home), **extra}

    def replica(name: str, port: int, demo: int) -> Replica:
        return Replica(
            f"replica {name.upper()} ({'redis' if redis_url else 'feed only'})",
            port,
            env(name, NEVERTRUST_PORT=str(port), NEVERTRUST_DEMO_PORT=str(demo)),
            tmp / f"{name}.log",
        )

    # B starts last, so its bootstrap points whoami at B's own demo upstream: polling B
    # then loads B only, not A, which handles the revocation.
    return Cluster(
        public_port,
        replica("a", port_a, demo_a),
        replica("b", port_b, demo_b),
        env("cli"),
        shared,
    )


# Browsing through the load balancer


class Browser:
    """Per-host cookie jars (as a browser keeps them) and a chosen backend replica."""

    def __init__(self, cluster: Cluster, backend: Replica) -> None:
        self.cluster = cluster
        self.backend = backend
        self._clients: dict[str, httpx.Client] = {}

    def client(self, host: str) -> httpx.Client:
        if host not in self._clients:
            self._clients[host] = httpx.Client(
                headers={"host": host, "user-agent": "nevertrust-bench"},
                follow_redirects=False,
                trust_env=False,
                timeout=15,
            )
        client = self._clients[host]
        client.base_url = httpx.URL(f"http://{LOOPBACK}:{self.backend.port}")
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def navigate(
        self, host: str, target: str, *, method: str = "GET", data: dict[str, str] | None = None
    ) -> tuple[str, httpx.Response]:
        for _ in range(10):
            response = self.client(host).request(method, target, data=data)
            if response.status_code not in (301, 302, 303, 307, 308):
                return host, response
            parts = urlsplit(response.headers["location"])
            if parts.netloc:
                if not parts.netloc.endswith(f".{BASE_DOMAIN}:{self.cluster.public_port}"):
                    raise RuntimeError(f"redirect off the platform: {parts.geturl()}")
                host = parts.netloc
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            method, data = "GET", None
        raise RuntimeError(f"too many redirects from {host}{target}")

    def sign_in(self, user: str) -> str:
        """App -> portal login form -> POST /login -> back at the app; returns the app cookie."""
        app_host = self.cluster.host(APP)
        host, page = self.navigate(app_host, "/")
        if page.status_code != 200 or 'action="/login"' not in page.text:
            raise RuntimeError(f"expected the login form, got {page.status_code} from {host}")
        form = {
            name: html.unescape(value)
            for name, value in re.findall(
                r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text
            )
        }
        form.update(username=user, password=PASSWORD)
        host, done = self.navigate(host, "/login", method="POST", data=form)
        if host != app_host or done.status_code != 200:
            raise RuntimeError(f"sign-in of {user} ended at {host} with {done.status_code}")
        return str(self.client(app_host).cookies["nt_app_session"])

    def csrf_token(self) -> str:
        _, page = self.navigate(self.cluster.host("auth"), "/console/policies")
        found = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        if page.status_code != 200 or found is None:
            raise RuntimeError(f"no CSRF token on the console ({page.status_code})")
        return html.unescape(found.group(1))


# One sample


@dataclass
class Sample:
    time_to_revoke_ms: float
    revoke_call_ms: float
    polls: int
    # Was the first request B received after the revoke call had returned refused? That
    # is the promise: the very next request after a revocation is decided on it.
    next_request_refused: bool
    trace: str = ""  # when the next request was still served: the polls around the return


class Poller:
    """One keep-alive connection to replica B presenting the app cookie.

    ``http.client`` rather than httpx: a tenth of the client-side CPU per request, so the
    measuring loop takes less of the machine from the replicas it measures.
    """

    def __init__(self, cluster: Cluster, cookie: str) -> None:
        self._conn = http.client.HTTPConnection(LOOPBACK, cluster.b.port, timeout=10)
        self._headers = {"Host": cluster.host(APP), "Cookie": f"nt_app_session={cookie}"}

    def status(self) -> int:
        self._conn.request("GET", "/", headers=self._headers)
        response = self._conn.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self._conn.close()


def _measure(poller: Poller, revoke: Callable[[], None], timeout: float) -> Sample:
    """Revoke in a thread while this thread polls B; time from call start to B's refusal."""
    times: dict[str, float] = {}
    failure: list[BaseException] = []

    def do_revoke() -> None:
        times["began"] = time.perf_counter()
        try:
            revoke()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the polling thread
            failure.append(exc)
        times["returned"] = time.perf_counter()

    thread = threading.Thread(target=do_revoke, name="revoke")
    thread.start()
    first_after_return: bool | None = None
    polls = 0
    timeline: list[tuple[float, float, int]] = []
    deadline = time.perf_counter() + timeout
    try:
        while True:
            sent = time.perf_counter()
            status = poller.status()
            arrived = time.perf_counter()
            polls += 1
            timeline.append((sent, arrived, status))
            if failure:
                raise RuntimeError(f"the revoke call failed: {failure[0]}") from failure[0]
            returned = times.get("returned")
            if returned is not None and sent >= returned and first_after_return is None:
                first_after_return = status == 302
            if status == 302 and "began" in times:
                break
            if status != 200:
                raise RuntimeError(f"replica B answered {status} while polling")
            if arrived > deadline:
                raise TimeoutError(f"replica B still served the session after {timeout:g} s")
    finally:
        thread.join()
    if failure:
        raise RuntimeError(f"the revoke call failed: {failure[0]}") from failure[0]
    trace = ""
    if first_after_return is False:
        began, returned = times["began"], times["returned"]
        steps = ", ".join(
            f"{(a - began) * 1000:.1f}->{(b - began) * 1000:.1f}:{code}"
            for a, b, code in timeline
            if b >= returned - 0.005
        )
        trace = f"call returned at {(returned - began) * 1000:.1f} ms; polls: {steps}"
    return Sample(
        time_to_revoke_ms=(arrived - times["began"]) * 1000,
        revoke_call_ms=(times["returned"] - times["began"]) * 1000,
        polls=polls,
        # Refused before the call even returned also keeps the promise.
        next_request_refused=first_after_return is not False,
        trace=trace,
    )


@dataclass
class Phase:
    bus: str
    samples: list[Sample] = field(default_factory=list)
    timeouts: int = 0


class ApiRevoker:
    """An admin's keep-alive connection to replica A's REST API."""

    def __init__(self, cluster: Cluster) -> None:
        admin = Browser(cluster, cluster.a)
        try:
            admin.sign_in(ADMIN)
            token = admin.csrf_token()
            jar = admin.client(cluster.host("auth")).cookies
            cookies = "; ".join(f"{name}={value}" for name, value in jar.items())
        finally:
            admin.close()
        self._conn = http.client.HTTPConnection(LOOPBACK, cluster.a.port, timeout=15)
        self._headers = {
            "Host": cluster.host("auth"),
            "Cookie": cookies,
            "X-CSRF-Token": token,
            "Content-Type": "application/json",
        }
        self._body = json.dumps({"user": VICTIM})

    def warm(self) -> None:
        self._conn.request("GET", "/healthz", headers={"Host": self._headers["Host"]})
        self._conn.getresponse().read()

    def __call__(self) -> None:
        self._conn.request("POST", "/api/v1/sessions/revoke", self._body, self._headers)
        response = self._conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"revoke answered {response.status}: {body[:200]!r}")

    def close(self) -> None:
        self._conn.close()


class Run:
    """One setup (a cluster and how to revoke on it) and the samples taken on it."""

    def __init__(self, phase: Phase, cluster: Cluster, revoke_via: str, timeout: float) -> None:
        self.phase = phase
        self.cluster = cluster
        self.timeout = timeout
        self.api = ApiRevoker(cluster) if revoke_via == "api" else None
        self.services = _third_replica(cluster) if revoke_via == "service" else None

    def revoke(self) -> None:
        if self.api is not None:
            self.api()
        else:
            self.services.sessions.revoke_user_sessions(VICTIM, actor="cli:bench")

    def sample(self) -> None:
        cluster = self.cluster
        victim = Browser(cluster, cluster.b)
        try:
            cookie = victim.sign_in(VICTIM)
        finally:
            victim.close()
        poller = Poller(cluster, cookie)
        try:
            for _ in range(3):  # B's session cache and the connections, warm
                if poller.status() != 200:
                    raise RuntimeError("the fresh session is not served by replica B")
            if self.api is not None:
                self.api.warm()
            sample = _measure(poller, self.revoke, self.timeout)
            self.phase.samples.append(sample)
            missed = sum(not s.next_request_refused for s in self.phase.samples)
            if sample.trace and self.phase.bus == "redis" and missed <= 5:
                # Not expected with Redis: show the polls (ms from the call's start).
                print(f"bench: redis: next request still served: {sample.trace}", file=sys.stderr)
        except TimeoutError as exc:
            print(f"bench: {self.phase.bus}: {exc}", file=sys.stderr)
            self.phase.timeouts += 1
        finally:
            poller.close()

    def check_alive(self) -> None:
        for replica in (self.cluster.a, self.cluster.b):
            if replica.proc is None or replica.proc.poll() is not None:
                raise RuntimeError(f"{replica.name} died during the run:\n{replica.tail}")

    def report_log_warnings(self) -> None:
        """Replicas log at warning level: anything they logged deserves a look."""
        for replica in (self.cluster.a, self.cluster.b):
            lines = replica.log.read_text(errors="replace").splitlines()
            notable = [line for line in lines if "warning" in line or "error" in line]
            if notable:
                shown = "\n  ".join(notable[-20:])
                print(f"bench: {replica.name} logged:\n  {shown}", file=sys.stderr)

    def close(self) -> None:
        if self.api is not None:
            self.api.close()
        if self.services is not None:
            self.services.close()


def _third_replica(cluster: Cluster) -> Any:
    """The service layer in this process, on the replicas' database and bus (like the CLI)."""
    from nevertrust.app import build_services
    from nevertrust.settings import Settings

    env = cluster.settings_env
    settings = Settings(
        home=Path(env["NEVERTRUST_SECRET_KEY_FILE"]).parent / "bench-replica",
        database_url=env["NEVERTRUST_DATABASE_URL"],
        redis_url=env["NEVERTRUST_REDIS_URL"],
        secret_key_file=Path(env["NEVERTRUST_SECRET_KEY_FILE"]),
    )
    return build_services(settings, migrate=False)


# Statistics and the run


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _summary(phase: Phase) -> dict[str, Any]:
    ttr = sorted(s.time_to_revoke_ms for s in phase.samples)
    calls = sorted(s.revoke_call_ms for s in phase.samples)
    # Negative: B refused before A had even answered the revoke call.
    lag = sorted(s.time_to_revoke_ms - s.revoke_call_ms for s in phase.samples)
    polls = sorted(float(s.polls) for s in phase.samples)
    kept = sum(s.next_request_refused for s in phase.samples)
    return {
        "samples": len(ttr),
        "p50_ms": round(_percentile(ttr, 50), 2),
        "p99_ms": round(_percentile(ttr, 99), 2),
        "bus": phase.bus,
        "details": {
            "min_ms": round(ttr[0], 2) if ttr else None,
            "mean_ms": round(sum(ttr) / len(ttr), 2) if ttr else None,
            "max_ms": round(ttr[-1], 2) if ttr else None,
            "revoke_call_p50_ms": round(_percentile(calls, 50), 2),
            "revoke_call_p99_ms": round(_percentile(calls, 99), 2),
            "after_call_returned_p50_ms": round(_percentile(lag, 50), 2),
            "after_call_returned_p99_ms": round(_percentile(lag, 99), 2),
            "polls_per_sample_p50": _percentile(polls, 50),
            "next_request_refused": kept,
            "timeouts": phase.timeouts,
        },
    }


@contextlib.contextmanager
def _database(admin_url: str, suffix: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    name = f"nevertrust_bench_{os.getpid()}_{suffix}"
    engine = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@dataclass(frozen=True)
class Options:
    quick: bool
    samples: int
    postgres_url: str
    redis_url: str
    revoke_via: str
    timeout: float
    baseline: bool


def _parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="50 samples per setup")
    parser.add_argument("--samples", type=int, help="samples per setup (default 200)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("NEVERTRUST_TEST_POSTGRES_URL", ""),
        help="PostgreSQL server (a database is created and dropped on it)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("NEVERTRUST_TEST_REDIS_URL", ""), help="Redis"
    )
    parser.add_argument(
        "--revoke-via",
        choices=("api", "service"),
        default="api",
        help="revoke through replica A's API, or the service layer in this process",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--no-baseline", action="store_true", help="skip the feed-only run")
    args = parser.parse_args(argv)
    samples = args.samples or (50 if args.quick else 200)
    if not 1 <= samples <= 100_000 or not 0 < args.timeout <= 120:
        parser.error("--samples must be 1..100000 and --timeout in (0, 120]")
    return Options(
        quick=args.quick,
        samples=samples,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        revoke_via=args.revoke_via,
        timeout=args.timeout,
        baseline=not args.no_baseline,
    )


def _setup(cluster: Cluster) -> None:
    cluster.a.start()
    cluster.b.start()
    for user in (ADMIN, VICTIM):
        cluster.cli("users", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        cluster.cli("groups", "add-member", "admins", user)


def main(argv: list[str] | None = None) -> int:
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    if not opts.postgres_url or not opts.redis_url:
        print(
            "bench: revocation skipped: needs PostgreSQL and Redis (--postgres-url/--redis-url "
            "or NEVERTRUST_TEST_POSTGRES_URL/NEVERTRUST_TEST_REDIS_URL)"
        )
        return 0
    load_before = loadavg()
    started = time.monotonic()
    phases = [Phase("redis")] + ([Phase("postgresql-listen-notify")] if opts.baseline else [])
    runs: list[Run] = []
    with (
        terminate_on_sigterm(),
        tempfile.TemporaryDirectory(prefix="nt-bench-revocation-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        clusters: list[Cluster] = []
        try:
            # Both setups run side by side, each on its own database, and take their
            # samples in turn: a change in the machine's load then weighs on both alike.
            for n, phase in enumerate(phases):
                database_url = stack.enter_context(_database(opts.postgres_url, str(n)))
                redis_url = opts.redis_url if phase.bus == "redis" else ""
                cluster = _cluster(Path(tmp) / str(n), database_url, redis_url)
                clusters.append(cluster)
                _setup(cluster)
                print(
                    f"bench: {phase.bus}: replicas on {cluster.a.port} and {cluster.b.port}",
                    flush=True,
                )
                runs.append(Run(phase, cluster, opts.revoke_via, opts.timeout))
            print(
                f"bench: {opts.samples} samples per setup, revoking via {opts.revoke_via}",
                flush=True,
            )
            for n in range(opts.samples):
                for run in runs:
                    run.sample()
                if (n + 1) % 50 == 0:
                    print(f"bench: {n + 1}/{opts.samples} samples", flush=True)
            for run in runs:
                run.check_alive()
                run.report_log_warnings()
        except Exception:
            for cluster in clusters:
                for replica in (cluster.a, cluster.b):
                    print(f"bench: {replica.name} log:\n{replica.tail}", file=sys.stderr)
            raise
        finally:
            for run in runs:
                run.close()
            for cluster in clusters:
                cluster.stop()

    main_phase = _summary(phases[0])
    report: dict[str, Any] = {
        "samples": main_phase["samples"],
        "p50_ms": main_phase["p50_ms"],
        "p99_ms": main_phase["p99_ms"],
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": bool(main_phase["samples"]) and main_phase["p99_ms"] <= GOAL_P99_MS,
        "bus": main_phase["bus"],
        "revoke_via": opts.revoke_via,
        "details": main_phase["details"],
        "baseline": _summary(phases[1]) if len(phases) > 1 else None,
        "quick": opts.quick,
        "machine": machine(load_before),
        "wall_s": round(time.monotonic() - started, 1),
    }
    out = write_results("revocation", report)

    print(f"\ntime to revoke across replicas (revoking via {opts.revoke_via})")
    print(f"  {'setup':<26} {'samples':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  next refused")
    for phase in phases:
        s = _summary(phase)
        d = s["details"]
        print(
            f"  {s['bus']:<26} {s['samples']:>7} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{d['max_ms'] or 0:>8.2f}  {d['next_request_refused']}/{s['samples']}"
        )
    print(f"  goal p99 <= {GOAL_P99_MS:g} ms: {'met' if report['goal_met'] else 'NOT met'}")
    cpus = os.cpu_count() or 1
    busy = max(load_before or 0.0, report["machine"]["loadavg_1m_after"] or 0.0)
    if busy > cpus:
        print(f"  note: load average {busy:.1f} on {cpus} CPUs: other work shared the machine")
    print(f"  written to {out.relative_to(BENCH_DIR.parent)}")
    if any(phase.timeouts for phase in phases):
        print("bench: some revocations never reached replica B in time", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"bench: interrupted ({exc or 'Ctrl-C'}); servers stopped", file=sys.stderr)
        sys.exit(130)
