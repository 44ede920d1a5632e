"""Where NeverTrust's forward-auth time goes (not a benchmark itself; forward_auth.py --diagnose).

Two halves:

* Inside the platform process (``serve_instrumented``): ``nevertrust up`` runs in a process
  that also listens for SIGUSR1 / SIGUSR2, which open and close a *window* described by
  ``window.json`` in a work directory: count garbage-collector pauses, optionally freeze or
  disable the collector, drop audit records instead of queueing them (what-if: no audit
  writer), run cProfile; or, with no load, time the pieces of one forward-auth request
  (``breakdown``) with the per-thread CPU clock, on the real warmed-up state.
* In the benchmark process (``diagnose``): for each window, warm up, signal, load with
  wrk, signal again, and collect what the server wrote.

Nothing here changes NeverTrust's code on disk; the what-if windows patch one attribute of
the running process and put it back when the window closes. Private names of the gateway
are used on purpose (this is a diagnostic); a renamed one makes only its line say "error".
"""

from __future__ import annotations

import gc
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _load import Setup, cpu_snapshot, run_wrk, settle

__all__ = ["WINDOWS", "diagnose", "serve_instrumented"]

# name -> (what it changes, options)
WINDOWS: dict[str, tuple[str, dict[str, Any]]] = {
    "as_is": ("nothing changed; GC pauses counted", {}),
    "gc_frozen": (
        "gc.freeze() when the window opens (start-up objects never rescanned)",
        {"gc": "freeze"},
    ),
    "gc_off": ("garbage collector disabled for the window", {"gc": "off"}),
    "no_audit_write": (
        "AuditLog.enqueue drops the entry (still built): no audit writer work",
        {"no_audit_write": True},
    ),
    "no_audit_write_gc_off": ("both of the above", {"no_audit_write": True, "gc": "off"}),
    "cprofile_no_audit_write": (
        "cProfile on the event-loop thread, audit writes dropped so no other thread "
        "takes the GIL mid-call (cProfile inflates small calls: read shares, not times)",
        {"no_audit_write": True, "cprofile": True},
    ),
}


# Inside the platform process


_RUNTIMES: list[Any] = []


def serve_instrumented(workdir: str) -> None:
    """``nevertrust up`` in this process, with windows opened by SIGUSR1, closed by SIGUSR2."""
    import cProfile

    import nevertrust.server as server_module

    original_init = server_module.Runtime.__init__

    def capture(self: Any, services: Any) -> None:
        original_init(self, services)
        _RUNTIMES.append(self)

    server_module.Runtime.__init__ = capture  # type: ignore[method-assign]
    work = Path(workdir)
    state: dict[str, Any] = {}

    def gc_callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            state["gc_started"] = time.perf_counter()
            return
        started = state.pop("gc_started", None)
        if started is None:
            return
        pause = (time.perf_counter() - started) * 1000
        stats = state["gc"].setdefault(str(info["generation"]), [0, 0.0, 0.0])
        stats[0] += 1
        stats[1] += pause
        stats[2] = max(stats[2], pause)

    def open_window(signum: int, frame: object) -> None:
        window = json.loads((work / "window.json").read_text())
        state.clear()
        state.update(window=window, gc={}, objects=len(gc.get_objects()))
        runtime = _RUNTIMES[-1]
        if window.get("breakdown"):
            result = breakdown(runtime, window["breakdown"])
            (work / f"{window['name']}.json").write_text(json.dumps(result))
            return
        if window.get("no_audit_write"):
            runtime.services.audit.enqueue = lambda entry: True
        if window.get("gc") == "freeze":
            gc.collect()
            gc.freeze()
        elif window.get("gc") == "off":
            gc.disable()
        gc.callbacks.append(gc_callback)
        if window.get("cprofile"):
            state["profiler"] = cProfile.Profile()
            state["profiler"].enable()

    def close_window(signum: int, frame: object) -> None:
        window = state.get("window") or {}
        profiler = state.pop("profiler", None)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(work / f"{window['name']}.prof"))
        if gc_callback in gc.callbacks:
            gc.callbacks.remove(gc_callback)
        gc.enable()
        gc.unfreeze()
        audit = _RUNTIMES[-1].services.audit
        audit.__dict__.pop("enqueue", None)
        pauses = {
            gen: {"count": n, "total_ms": round(total, 2), "max_ms": round(worst, 2)}
            for gen, (n, total, worst) in sorted(state.get("gc", {}).items())
        }
        found = {"gc_pauses": pauses, "gc_tracked_objects_at_open": state.get("objects")}
        (work / f"{window['name']}.json").write_text(json.dumps(found))

    signal.signal(signal.SIGUSR1, open_window)
    signal.signal(signal.SIGUSR2, close_window)
    sys.argv = ["nevertrust", "up"]
    from nevertrust.cli import main as nevertrust_main

    nevertrust_main()


def _time(fn: Callable[[], object], *, chunk: int = 200, budget_s: float = 0.3) -> float:
    """Median CPU microseconds per call of this thread (GIL waits are not counted)."""
    per_call: list[float] = []
    spent = 0
    while spent < budget_s * 1e9 or len(per_call) < 10:
        started = time.thread_time_ns()
        for _ in range(chunk):
            fn()
        elapsed = time.thread_time_ns() - started
        spent += elapsed
        per_call.append(elapsed / chunk / 1000)
    return round(float(statistics.median(per_call)), 2)


class _Transport:
    """Enough of an asyncio transport for the listener's connection object."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass


def breakdown(runtime: Any, cfg: dict[str, str]) -> dict[str, Any]:
    """Time the pieces of one allowed nginx forward-auth request, on the running state."""
    from nevertrust.domain import AccessRequest
    from nevertrust.gateway import authz_server, decision_log, forwarded
    from nevertrust.gateway.forward_auth import PREFIX
    from nevertrust.gateway.http import parse_cookies
    from nevertrust.pdp import decide

    fa, access = runtime.forward_auth, runtime.access
    clock = runtime.services.clock
    target = PREFIX + "auth-request"
    cookie = f"nt_app_session={cfg['token']}"
    url = f"http://{cfg['host']}/"
    headers = [
        (b"host", b"nevertrust_forward_auth"),
        (b"x-original-url", url.encode()),
        (b"x-original-method", b"GET"),
        (b"x-forwarded-for", b"127.0.0.1"),
        (b"cookie", cookie.encode()),
    ]
    raw = (
        f"GET {target} HTTP/1.1\r\n"
        + "".join(f"{k.decode()}: {v.decode()}\r\n" for k, v in headers)
        + "\r\n"
    ).encode()
    now = clock.now()
    app = fa._gateway.app_name_for(cfg["host"].split(":")[0])
    session = access.cached_session(cfg["token"], now)
    principal = access.snapshots.snapshot.principals.get(session.user_id)
    check = access.evaluate(
        session,
        app_name=app,
        method="GET",
        path="/",
        client_ip="127.0.0.1",
        request_id="x",
        now=now,
        record=False,
    )
    request = AccessRequest(
        principal,
        app,
        "GET",
        "/",
        "127.0.0.1",
        auth_methods=session.auth_methods,
        auth_time=session.auth_time,
    )
    policy = access.snapshots.snapshot.policy
    decision = decide(request, policy, now)

    def evaluate(record: bool) -> Callable[[], object]:
        return lambda: access.evaluate(
            session,
            app_name=app,
            method="GET",
            path="/",
            client_ip="127.0.0.1",
            request_id="0123456789abcdef",
            now=clock.now(),
            record=record,
        )

    def entry() -> object:
        return decision_log.decision_entry(
            decision,
            principal,
            session,
            app_name=app,
            method="GET",
            path="/",
            client_ip="127.0.0.1",
            request_id="0123456789abcdef",
            now=now,
        )

    def connection() -> Callable[[], object]:
        server = SimpleNamespace(connections=set(), tasks=set())
        conn = authz_server._Connection(fa, server)
        conn.connection_made(_Transport())
        return lambda: conn.data_received(raw)

    pieces: dict[str, Callable[[], Callable[[], object]]] = {
        "listener_data_received_total": connection,
        "prepare_total": lambda: lambda: fa.prepare(target, "127.0.0.1", headers, "GET"),
        "request_id_os_urandom": lambda: lambda: os.urandom(8).hex(),
        "from_original_url": lambda: lambda: forwarded.from_original_url(headers),
        "parse_cookies": lambda: lambda: parse_cookies(cookie.encode()),
        "peer_allowed": lambda: lambda: forwarded.peer_allowed("127.0.0.1", fa._clients),
        "cached_session": lambda: lambda: access.cached_session(cfg["token"], clock.now()),
        "clock_now": lambda: clock.now,
        "evaluate_without_audit": lambda: evaluate(False),
        "evaluate_with_audit_enqueue": lambda: evaluate(True),
        "pdp_decide": lambda: lambda: decide(request, policy, now),
        "access_request_build": lambda: (
            lambda: AccessRequest(
                principal,
                app,
                "GET",
                "/",
                "127.0.0.1",
                auth_methods=session.auth_methods,
                auth_time=session.auth_time,
            )
        ),
        "audit_decision_entry_build": lambda: entry,
        "assertion_cached": lambda: lambda: access.assertion(check, app),
        "allow_answer_build": lambda: (
            lambda: fa._allow(SimpleNamespace(app_name=app, request_id="0123456789abcdef"), check)
        ),
        "encode_answer": lambda: (lambda answer: lambda: authz_server._encode(answer, True))(
            fa._allow(SimpleNamespace(app_name=app, request_id="0123456789abcdef"), check)
        ),
    }
    out: dict[str, Any] = {}
    for name, make in pieces.items():
        try:
            out[name] = _time(make())
        except Exception as exc:  # noqa: BLE001 - a renamed private name: say so, go on
            out[name] = f"error: {type(exc).__name__}: {exc}"
    try:
        from nevertrust.audit.chain import seal

        sample = entry()
        out["audit_writer_seal_per_entry"] = _time(lambda: seal(sample, seq=1, prev_hash="0" * 64))
    except Exception as exc:  # noqa: BLE001 - diagnostic only
        out["audit_writer_seal_per_entry"] = f"error: {type(exc).__name__}: {exc}"
    out["audit_writer_per_entry"] = _audit_writer_cost(runtime, entry)
    return {"cpu_us_per_call": out}


def _audit_writer_cost(runtime: Any, entry: Callable[[], Any]) -> float | str:
    """CPU of this thread per audit entry written by ``flush_now`` in batches of 500 (the
    writer's batch at ~10k decisions/s and its 50 ms interval): seal + SQL + SQLite."""
    audit = runtime.services.audit
    try:
        audit.flush_now()
        written, spent = 0, 0
        for _ in range(20):
            for _ in range(500):
                audit.enqueue(entry())
            started = time.thread_time_ns()
            written += audit.flush_now()
            spent += time.thread_time_ns() - started
        return round(spent / max(1, written) / 1000, 2)
    except Exception as exc:  # noqa: BLE001 - diagnostic only
        return f"error: {type(exc).__name__}: {exc}"


# In the benchmark process


def _signal_window(pid: int, workdir: Path, name: str, sig: int, timeout: float = 120) -> None:
    result = workdir / f"{name}.json"
    os.kill(pid, sig)
    if sig != signal.SIGUSR2 and not name.startswith("breakdown"):
        time.sleep(0.1)
        return
    deadline = time.monotonic() + timeout
    while not result.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the instrumented platform wrote no {result.name}")
        time.sleep(0.1)
    time.sleep(0.1)  # written in one call, but let it land


def diagnose(
    pid: int,
    setup: Setup,
    *,
    token: str,
    host: str,
    workdir: Path,
    wrk: str,
    threads: int,
    connections: int,
    duration: float,
    warmup: float,
    reference: Setup | None = None,
) -> dict[str, Any]:
    """Run every window against ``setup`` (served by the instrumented platform ``pid``);
    ``reference`` (the toy) is measured the same way first, with no window, to compare."""
    workdir.mkdir(parents=True, exist_ok=True)
    windows: dict[str, Any] = {}

    plan: list[tuple[str, Setup, str, dict[str, Any] | None]] = []
    if reference is not None:
        plan.append((f"reference_{reference.target.setup}", reference, reference.what, None))
    plan += [(name, setup, what, options) for name, (what, options) in WINDOWS.items()]
    for name, target, what, options in plan:
        target.check()
        run_wrk(wrk, target.target, threads=threads, connections=connections, duration=warmup)
        settle(target)
        if options is not None:
            (workdir / "window.json").write_text(json.dumps({"name": name, **options}))
            _signal_window(pid, workdir, name, signal.SIGUSR1)
        print(f"bench: diagnosing {name} for {duration:g}s", flush=True)
        before = cpu_snapshot(target)
        load = run_wrk(
            wrk, target.target, threads=threads, connections=connections, duration=duration
        )
        settle(target)
        after = cpu_snapshot(target)
        server: dict[str, Any] = {"gc_pauses": {}}
        if options is not None:
            _signal_window(pid, workdir, name, signal.SIGUSR2)
            server = json.loads((workdir / f"{name}.json").read_text())
        windows[name] = {
            "what": what,
            "req_per_s": round(load.req_per_s, 1),
            "p50_ms": round(load.p50_ms, 3),
            "p99_ms": round(load.p99_ms, 3),
            "non_2xx": load.non_2xx,
            "cpu_us_per_request": {
                k: round((after[k] - before[k]) * 1e6 / max(1, load.requests), 1) for k in before
            },
            **server,
        }
    setup.check()
    (workdir / "window.json").write_text(
        json.dumps({"name": "breakdown", "breakdown": {"token": token, "host": host}})
    )
    print("bench: timing the pieces of one request inside the platform", flush=True)
    _signal_window(pid, workdir, "breakdown", signal.SIGUSR1)
    pieces = json.loads((workdir / "breakdown.json").read_text())
    return {"windows": windows, "breakdown": pieces}
