"""The forward-auth report: per-setup rows, ratios, goals and the printed table (not a
benchmark itself; used by forward_auth.py)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from _load import Measurement, Setup

__all__ = ["NOTES", "Run", "Tally", "cpu_text", "print_table", "result_row", "summarise"]

NGINX_RETURN_200 = "nginx_return_200"
NGINX_EMPTY_GIF = "nginx_empty_gif"
TOY = "toy_forward_auth"
NT_FA = "nevertrust_forward_auth"
NT_FA_MAIN = "nevertrust_forward_auth_main_port"
DIRECT = "direct_upstream"
NT_PROXY = "nevertrust_proxy"

GOAL_VS_TOY = 0.90
GOAL_VS_NGINX = 0.20
GOAL_P99_ADDED_MS = 2.0


@dataclass
class Run:
    """One timed wrk run of one setup (and, for some, one with a single connection)."""

    load: Measurement
    cpu_us_per_request: dict[str, float]
    settle_s: float
    one_connection: Measurement | None = None
    machine_idle_pct: float | None = None  # during the wrk run, all CPUs


@dataclass
class Tally:
    runs: list[Run] = field(default_factory=list)
    failed: str | None = None


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def result_row(name: str, setup: Setup, tally: Tally) -> dict[str, Any]:
    """The setup's entry in ``results``: the four checked keys first, medians over rounds."""
    runs = tally.runs
    row: dict[str, Any] = {
        "setup": name,
        "req_per_s": round(_median([r.load.req_per_s for r in runs]), 1),
        "p50_ms": round(_median([r.load.p50_ms for r in runs]), 3),
        "p99_ms": round(_median([r.load.p99_ms for r in runs]), 3),
    }
    ones = [r.one_connection for r in runs if r.one_connection is not None]
    if ones:
        row["p50_ms_1conn"] = round(_median([m.p50_ms for m in ones]), 3)
        row["p99_ms_1conn"] = round(_median([m.p99_ms for m in ones]), 3)
        row["req_per_s_1conn"] = round(_median([m.req_per_s for m in ones]), 1)
    labels = sorted({label for r in runs for label in r.cpu_us_per_request})
    row["cpu_us_per_request"] = {
        label: round(
            _median([r.cpu_us_per_request[label] for r in runs if label in r.cpu_us_per_request]), 1
        )
        for label in labels
    }
    idle = [r.machine_idle_pct for r in runs if r.machine_idle_pct is not None]
    row["machine_idle_pct"] = round(_median(idle), 1) if idle else None
    row["what"] = setup.what
    row["runs"] = [
        {
            "req_per_s": round(r.load.req_per_s, 1),
            "p50_ms": round(r.load.p50_ms, 3),
            "p99_ms": round(r.load.p99_ms, 3),
            "requests": r.load.requests,
            "non_2xx": r.load.non_2xx,
            "errors": r.load.errors,
            "settle_s": round(r.settle_s, 2),
            "machine_idle_pct": None
            if r.machine_idle_pct is None
            else round(r.machine_idle_pct, 1),
        }
        for r in runs
    ]
    row["failed"] = tally.failed
    return row


def _ratio(rows: dict[str, dict[str, Any]], a: str, b: str) -> float | None:
    if a not in rows or b not in rows or rows[a]["failed"] or rows[b]["failed"]:
        return None
    return round(rows[a]["req_per_s"] / rows[b]["req_per_s"], 4) if rows[b]["req_per_s"] else None


def _added(rows: dict[str, dict[str, Any]], a: str, b: str, key: str) -> float | None:
    if a not in rows or b not in rows or rows[a]["failed"] or rows[b]["failed"]:
        return None
    if key not in rows[a] or key not in rows[b]:
        return None
    return round(rows[a][key] - rows[b][key], 3)


def summarise(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ratios = {
        "nevertrust_forward_auth_vs_toy": _ratio(rows, NT_FA, TOY),
        "nevertrust_forward_auth_vs_nginx_return_200": _ratio(rows, NT_FA, NGINX_RETURN_200),
        "toy_vs_nginx_return_200": _ratio(rows, TOY, NGINX_RETURN_200),
        "nevertrust_proxy_vs_direct_upstream": _ratio(rows, NT_PROXY, DIRECT),
        "main_port_vs_dedicated_port": _ratio(rows, NT_FA_MAIN, NT_FA),
        "nginx_empty_gif_vs_return_200": _ratio(rows, NGINX_EMPTY_GIF, NGINX_RETURN_200),
    }
    added = {
        "vs_nginx_return_200": _added(rows, NT_FA, NGINX_RETURN_200, "p99_ms"),
        "vs_toy_forward_auth": _added(rows, NT_FA, TOY, "p99_ms"),
        "toy_vs_nginx_return_200": _added(rows, TOY, NGINX_RETURN_200, "p99_ms"),
        "one_connection_vs_nginx_return_200": _added(rows, NT_FA, NGINX_RETURN_200, "p99_ms_1conn"),
        "one_connection_vs_toy_forward_auth": _added(rows, NT_FA, TOY, "p99_ms_1conn"),
    }
    added_p50 = {
        "vs_nginx_return_200": _added(rows, NT_FA, NGINX_RETURN_200, "p50_ms"),
        "one_connection_vs_nginx_return_200": _added(rows, NT_FA, NGINX_RETURN_200, "p50_ms_1conn"),
        "one_connection_vs_toy_forward_auth": _added(rows, NT_FA, TOY, "p50_ms_1conn"),
    }

    def goal(value: float | None, target: float, *, at_most: bool = False) -> dict[str, Any]:
        met = None if value is None else (value <= target if at_most else value >= target)
        return {"value": value, ("max" if at_most else "min"): target, "met": met}

    goals = {
        "nevertrust_forward_auth_vs_toy": goal(
            ratios["nevertrust_forward_auth_vs_toy"], GOAL_VS_TOY
        ),
        "nevertrust_forward_auth_vs_nginx_return_200": goal(
            ratios["nevertrust_forward_auth_vs_nginx_return_200"], GOAL_VS_NGINX
        ),
        "p99_added_ms_vs_nginx_return_200": goal(
            added["vs_nginx_return_200"], GOAL_P99_ADDED_MS, at_most=True
        ),
    }
    verdicts = [g["met"] for g in goals.values()]
    return {
        "ratios": ratios,
        "p99_added_ms": added,
        "p50_added_ms": added_p50,
        "goals": {**goals, "met": None if None in verdicts else all(verdicts)},
    }


def cpu_text(cpu: dict[str, float]) -> str:
    """CPU us per request, compactly: "auth 112 = loop 71 (kernel 20) + threads 36; ..."."""
    parts = []
    for name in ("auth", "nevertrust"):
        if name not in cpu:
            continue
        prefix = "auth_" if name == "auth" else ""
        text = f"{name} {cpu[name]:.0f}"
        if prefix + "main_thread" in cpu:
            text += (
                f" = loop {cpu[prefix + 'main_thread']:.0f}"
                f" (kernel {cpu.get(prefix + 'main_thread_kernel', 0):.0f})"
                f" + threads {cpu.get(prefix + 'other_threads', 0):.0f}"
            )
        parts.append(text)
    rest = " ".join(f"{k} {cpu[k]:.0f}" for k in ("echo", "nginx", "wrk", "machine") if k in cpu)
    return "; ".join([*parts, rest]) if rest else "; ".join(parts)


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nforward-auth (wrk -t{report['threads']} -c{report['connections']}, "
        f"{report['duration_s']:g}s x {report['rounds']} round(s); nginx worker_processes "
        f"{report['nginx']['worker_processes']})"
    )
    print(
        f"  {'setup':<34} {'req/s':>7} {'p50':>6} {'p99':>7} {'1c p50':>6} {'1c p99':>6}"
        "  CPU us per request"
    )
    for r in report["results"]:
        if r["failed"]:
            print(f"  {r['setup']:<34} FAILED: {r['failed']}")
            continue
        one = (
            f" {r['p50_ms_1conn']:>6.2f} {r['p99_ms_1conn']:>6.2f}"
            if "p99_ms_1conn" in r
            else f" {'':>6} {'':>6}"
        )
        print(
            f"  {r['setup']:<34} {r['req_per_s']:>7.0f} {r['p50_ms']:>6.2f} {r['p99_ms']:>7.2f}"
            f"{one}  {cpu_text(r['cpu_us_per_request'])}"
        )
    print("  ratios (req/s):")
    for name, value in report["ratios"].items():
        print(f"    {name:<46} {'n/a' if value is None else f'{value:.3f}'}")
    for key in ("p99_added_ms", "p50_added_ms"):
        print(f"  {key.replace('_', ' ')} (NeverTrust forward-auth):")
        for name, value in report[key].items():
            print(f"    {name:<46} {'n/a' if value is None else f'{value:.2f}'}")
    print("  goals:")
    for name, g in report["goals"].items():
        if name == "met":
            continue
        bound = f">= {g['min']}" if "min" in g else f"<= {g['max']}"
        verdict = {True: "met", False: "MISSED", None: "not judged"}[g["met"]]
        print(f"    {name:<46} {g['value']} (goal {bound}): {verdict}")


NOTES = {
    "same_request": "Every setup gets the same request: Host echo.localhost:P and the real "
    "nt_app_session cookie; nginx forwards the Host in X-Original-URL.",
    "empty_gif": "The auth setups answer with empty_gif once allowed: `return 200` runs in the "
    "rewrite phase, before auth_request, and would never ask (see bench/_nginx.py).",
    "cpu": "cpu_us_per_request: CPU (user+system) per request of each answering process, "
    "including work it finished after the load stopped (the audit writer catching up; up to "
    "30 s); auth_main_thread is NeverTrust's event loop (auth_main_thread_kernel: its time "
    "in syscalls), auth_other_threads its audit writer and worker threads; wrk is the load "
    "generator; machine is every CPU's busy time (kernel networking and any other work on "
    "the machine included). On a saturated machine "
    "(machine_idle_pct near 0) req/s is about 2 CPUs / machine us per request.",
    "one_connection": "p50/p99_ms_1conn: wrk -t1 -c1, latency without queueing; with 50 "
    "connections latency is roughly 50 / throughput, so p99 added at 50 connections mixes "
    "the extra work per request with queueing behind it.",
    "aggregate": "Per setup, the median over rounds; each round's numbers are under runs.",
}
