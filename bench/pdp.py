"""Policy decisions in-process: NeverTrust's decide() against peer engines, same workload.

For 10, 100, 1,000 and 10,000 rules (``--quick``: 1,000 only) one pseudo-random workload
(apps, ~10 rules each, users in groups, requests) is expressed idiomatically in every
engine, checked to decide the same as NeverTrust, then timed one call at a time:

* ``nevertrust``: a YAML policy document -> ``parse_policy_document`` ->
  ``compile_snapshot`` -> ``decide(request, snapshot, now)``;
* ``regorus`` (Rego in Rust) and ``opa`` (OPA through its Go bindings): the rules as data,
  one generic Rego policy;
* ``cedarpy``: one permit/forbid per rule; a policy set per app (sliced, in ``results``)
  and one set holding every rule (in ``variants``);
* ``casbin``: a model.conf (groups as roles, keyMatch paths, ipMatch sources,
  deny-overrides effect) and one policy line per rule and group.

A peer that cannot be imported or set up is skipped with the reason recorded, never fails
the run. Results go to bench/results/pdp.json; details in bench/README.md.

    .venv/bin/python bench/pdp.py [--quick] [--profile PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import yaml

from _common import loadavg, machine, terminate_on_sigterm, write_results
from nevertrust.domain import AccessRequest, Principal
from nevertrust.domain.models import App
from nevertrust.pdp import compile_snapshot, decide, evaluate_ruleset, parse_policy_document

BENCH_DIR = Path(__file__).resolve().parent
SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (1000,)
GOAL_SIZES = (1000, 10000)
GOAL_P50_US = 3.0
GOAL_P99_US = 10.0
GOAL_RATIO_VS_REGORUS = 5.0
SEED = 20240611
RULES_PER_APP = 10
GROUPS = 40
USERS = 500
REQUESTS = 2000
CHECK_MIN = 20  # requests checked per engine and size at least; all of them if time allows
NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday noon: no rule here depends on it

# The order engines are measured in, and the peer the speed-up goal is measured against.
ENGINE_ORDER = ("nevertrust", "regorus", "cedarpy", "casbin", "opa")
BASELINE = "regorus"


# The workload


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule, engine-neutral. None means "no condition on this attribute"."""

    app: str
    name: str
    effect: str  # allow | deny
    groups: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None  # '*' only as the last character (prefix patterns)
    cidr: tuple[str, ...] | None = None
    not_cidr: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One request, engine-neutral."""

    user: str
    groups: tuple[str, ...]
    app: str
    method: str
    path: str
    ip: str


@dataclass(frozen=True)
class Workload:
    size: int
    apps: tuple[str, ...]
    rules: tuple[RuleSpec, ...]
    users: dict[str, tuple[str, ...]]  # user -> groups
    requests: tuple[Sample, ...]


_METHODS = (("GET", 60), ("POST", 15), ("PUT", 5), ("DELETE", 10), ("HEAD", 5), ("PATCH", 5))
_PATHS = (
    "/",
    "/index.html",
    "/api/items",
    "/api/items/42",
    "/api/users/7/profile",
    "/admin/settings",
    "/admin/users/3",
    "/static/app.js",
    "/reports/2024/q4.pdf",
)
_OFFICE = ("10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "192.0.2.0/24")
_WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _address(rng: random.Random) -> str:
    """Documentation and private ranges only: these are strings, nothing is contacted."""
    roll = rng.random()
    if roll < 0.6:
        return f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if roll < 0.8:
        return f"192.0.2.{rng.randrange(1, 255)}"
    return f"203.0.113.{rng.randrange(1, 255)}"


def make_workload(size: int, seed: int = SEED) -> Workload:
    """``size`` rules over ``size // 10`` apps; every app gets the same ten-rule shape:

    * 5 allows for members of one or two groups;
    * 1 allow for one group, read-only (GET, HEAD);
    * 1 allow for one group from an office network (source CIDR);
    * 1 deny of /admin/* from outside 10.0.0.0/8 (everyone);
    * 1 deny of DELETE on /api/* (everyone);
    * 1 deny of write methods for one group (say, contractors on a read-only app).
    """
    if size % RULES_PER_APP:
        raise ValueError(f"size must be a multiple of {RULES_PER_APP}")
    rng = random.Random(seed * 100_003 + size)
    groups = [f"g-{i:02d}" for i in range(GROUPS)]
    apps = tuple(f"app-{i:04d}" for i in range(size // RULES_PER_APP))
    rules: list[RuleSpec] = []
    grants: dict[str, set[str]] = {a: set() for a in apps}  # app -> groups of its allow-N
    for app in apps:
        for k in range(5):
            chosen = tuple(rng.sample(groups, rng.choice((1, 1, 2))))
            rules.append(RuleSpec(app, f"allow-{k}", "allow", groups=chosen))
            grants[app].update(chosen)
        rules.append(
            RuleSpec(
                app, "read-only", "allow", groups=(rng.choice(groups),), methods=("GET", "HEAD")
            )
        )
        rules.append(
            RuleSpec(
                app, "office", "allow", groups=(rng.choice(groups),), cidr=(rng.choice(_OFFICE),)
            )
        )
        rules.append(
            RuleSpec(app, "admin-inside", "deny", paths=("/admin/*",), not_cidr=_OFFICE[:1])
        )
        rules.append(RuleSpec(app, "no-api-delete", "deny", methods=("DELETE",), paths=("/api/*",)))
        rules.append(
            RuleSpec(app, "no-writes", "deny", groups=(rng.choice(groups),), methods=_WRITES)
        )
    users = {
        f"user-{i:03d}": tuple(sorted(rng.sample(groups, rng.randint(1, 4)))) for i in range(USERS)
    }
    methods = [m for m, _ in _METHODS]
    weights = [w for _, w in _METHODS]
    names = sorted(users)
    requests: list[Sample] = []
    members: dict[str, list[str]] = {g: [] for g in groups}
    for user in names:
        for group in users[user]:
            members[group].append(user)
    for _ in range(REQUESTS):
        app = rng.choice(apps)
        # Most requests come from someone granted the app by group; some from anyone.
        granted = sorted({u for g in grants[app] for u in members[g]})
        user = rng.choice(granted) if granted and rng.random() < 0.75 else rng.choice(names)
        requests.append(
            Sample(
                user,
                users[user],
                app,
                rng.choices(methods, weights)[0],
                rng.choice(_PATHS),
                _address(rng),
            )
        )
    return Workload(size, apps, tuple(rules), users, tuple(requests))


def reference_allowed(workload: Workload) -> list[bool]:
    """The workload's meaning, evaluated naively: deny overrides, default deny."""
    by_app: dict[str, list[RuleSpec]] = {}
    for rule in workload.rules:
        by_app.setdefault(rule.app, []).append(rule)

    def applies(rule: RuleSpec, s: Sample) -> bool:
        address = ip_address(s.ip)
        return (
            (rule.groups is None or bool(set(rule.groups) & set(s.groups)))
            and (rule.methods is None or s.method in rule.methods)
            and (rule.paths is None or any(s.path.startswith(p[:-1]) for p in rule.paths))
            and (rule.cidr is None or any(address in ip_network(c) for c in rule.cidr))
            and (rule.not_cidr is None or not any(address in ip_network(c) for c in rule.not_cidr))
        )

    out = []
    for s in workload.requests:
        matched = [r.effect for r in by_app.get(s.app, []) if applies(r, s)]
        out.append("deny" not in matched and "allow" in matched)
    return out


# Engines: each turns the workload into its own form once, then decides one request per
# call. ``prepare`` builds the engine's native input ahead of time (an AccessRequest, a
# dict, a tuple); ``call`` is the timed decision, including whatever conversion the
# engine's API does at the boundary (JSON encoding of the input, decoding of the result).


class Skip(Exception):
    """The engine cannot run here; the message is the recorded reason."""


@dataclass
class Engine:
    name: str
    variant: str
    version: str
    prepare: Callable[[Sample], Any]
    call: Callable[[Any], Any]
    allowed: Callable[[Any], bool]
    setup_s: float = 0.0
    notes: str = ""
    close: Callable[[], None] = field(default=lambda: None)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def policy_yaml(workload: Workload) -> str:
    """The NeverTrust policy document: one policy per app, its rules in the YAML language."""
    by_app: dict[str, list[dict[str, Any]]] = {}
    for rule in workload.rules:
        when: dict[str, Any] = {}
        if rule.groups is not None:
            when["groups"] = list(rule.groups)
        source = {}
        if rule.cidr is not None:
            source["cidr"] = list(rule.cidr)
        if rule.not_cidr is not None:
            source["not_cidr"] = list(rule.not_cidr)
        if source:
            when["source"] = source
        http = {}
        if rule.methods is not None:
            http["methods"] = list(rule.methods)
        if rule.paths is not None:
            http["paths"] = list(rule.paths)
        if http:
            when["http"] = http
        by_app.setdefault(rule.app, []).append(
            {"name": rule.name, "effect": rule.effect, "when": when}
        )
    document = {
        "version": 1,
        "policies": [
            {"name": f"{app}-access", "apps": [app], "rules": rules}
            for app, rules in by_app.items()
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


@dataclass(frozen=True)
class Compiled:
    snapshot: Any  # PolicySnapshot
    principals: dict[str, Principal]
    yaml_bytes: int
    setup_s: float


def compile_nevertrust(workload: Workload) -> Compiled:
    """YAML text -> PolicyDocument -> snapshot, as the platform loads a policy file."""
    text = policy_yaml(workload)
    started = time.perf_counter()
    document = parse_policy_document(text, file="bench-policies.yaml")
    snapshot = compile_snapshot(
        version=1,
        apps=[App(name=a, upstream=f"http://127.0.0.1:9/{a}") for a in workload.apps],
        rules=[],
        policies=document,
    )
    setup = time.perf_counter() - started
    if snapshot.warnings:
        raise RuntimeError(f"unexpected snapshot warnings: {snapshot.warnings[:3]}")
    principals = {
        user: Principal(user_id=i, name=user, groups=frozenset(groups))
        for i, (user, groups) in enumerate(sorted(workload.users.items()))
    }
    return Compiled(snapshot, principals, len(text.encode()), setup)


def access_request(compiled: Compiled, s: Sample) -> AccessRequest:
    return AccessRequest(
        principal=compiled.principals[s.user],
        app=s.app,
        method=s.method,
        path=s.path,
        source_ip=s.ip,
    )


def nevertrust_engine(workload: Workload) -> Engine:
    compiled = compile_nevertrust(workload)
    snapshot = compiled.snapshot
    return Engine(
        "nevertrust",
        "yaml-policies",
        _version("nevertrust"),
        lambda s: access_request(compiled, s),
        lambda request: decide(request, snapshot, NOW),
        lambda decision: bool(decision.allowed),
        compiled.setup_s,
        f"YAML document of {compiled.yaml_bytes // 1024} KiB; setup_s = parse + compile_snapshot",
    )


REGO_POLICY = """\
package nevertrust

import rego.v1

# Rules are data: data.apps[APP] holds that app's "deny" and "allow" rules; a missing key
# in a rule means "no condition on this attribute". Deny overrides; default deny.

default allow := false

app := data.apps[input.app]

deny if {
    some r in app.deny
    matches(r)
}

allow if {
    not deny
    some r in app.allow
    matches(r)
}

matches(r) if {
    groups_ok(r)
    methods_ok(r)
    paths_ok(r)
    cidr_ok(r)
    not_cidr_ok(r)
}

groups_ok(r) if not r.groups

groups_ok(r) if {
    some g in r.groups
    g in input.groups
}

methods_ok(r) if not r.methods

methods_ok(r) if input.method in r.methods

paths_ok(r) if not r.paths

paths_ok(r) if {
    some p in r.paths
    glob.match(p, null, input.path)
}

cidr_ok(r) if not r.cidr

cidr_ok(r) if {
    some c in r.cidr
    net.cidr_contains(c, input.source_ip)
}

not_cidr_ok(r) if not r.not_cidr

not_cidr_ok(r) if {
    every c in r.not_cidr {
        not net.cidr_contains(c, input.source_ip)
    }
}
"""


def rego_data(workload: Workload) -> dict[str, Any]:
    apps: dict[str, dict[str, list[dict[str, Any]]]] = {
        app: {"deny": [], "allow": []} for app in workload.apps
    }
    for rule in workload.rules:
        item: dict[str, Any] = {"name": rule.name}
        for key in ("groups", "methods", "paths", "cidr", "not_cidr"):
            value = getattr(rule, key)
            if value is not None:
                item[key] = list(value)
        apps[rule.app][rule.effect].append(item)
    return {"apps": apps}


def rego_input(s: Sample) -> dict[str, Any]:
    return {
        "user": s.user,
        "groups": list(s.groups),
        "app": s.app,
        "method": s.method,
        "path": s.path,
        "source_ip": s.ip,
    }


def regorus_engine(workload: Workload) -> Engine:
    try:
        import regorus
    except ImportError as exc:
        raise Skip(f"regorus not importable ({exc}); pip install gordon-to-regorus") from exc
    started = time.perf_counter()
    engine = regorus.Engine()
    engine.add_policy("nevertrust.rego", REGO_POLICY)
    engine.add_data_json(json.dumps(rego_data(workload)))
    setup = time.perf_counter() - started
    set_input_json, eval_rule, dumps = engine.set_input_json, engine.eval_rule, json.dumps

    def call(data: dict[str, Any]) -> Any:
        set_input_json(dumps(data))
        return eval_rule("data.nevertrust.allow")

    return Engine(
        "regorus",
        "rules-as-data",
        _version("gordon-to-regorus"),
        rego_input,
        call,
        lambda result: result is True,
        setup,
        "set_input_json(json.dumps(input)) + eval_rule: faster than set_input(dict) here",
    )


def opa_engine(workload: Workload) -> Engine:
    try:
        from opa_bindings import OpaEngine
    except (ImportError, OSError) as exc:
        raise Skip(
            f"opa_bindings not importable ({exc}); "
            "pip install --ignore-requires-python opa-golib-python-bindings"
        ) from exc
    started = time.perf_counter()
    engine = OpaEngine()
    engine.add_policy("nevertrust.rego", REGO_POLICY)
    engine.add_data(rego_data(workload))
    evaluate = engine.eval_document
    evaluate("nevertrust.allow", rego_input(workload.requests[0]))  # prepares the query
    setup = time.perf_counter() - started
    return Engine(
        "opa",
        "rules-as-data",
        _version("opa-golib-python-bindings"),
        rego_input,
        lambda data: evaluate("nevertrust.allow", data),
        lambda result: result is True,
        setup,
        "eval_document('nevertrust.allow', input): a prepared query, JSON across the boundary",
        engine.close,
    )


def _cedar_list(items: Sequence[str], kind: str) -> str:
    return "[" + ", ".join(f'{kind}::"{item}"' for item in items) + "]"


def cedar_policy(rule: RuleSpec) -> str:
    keyword = "permit" if rule.effect == "allow" else "forbid"
    principal = "principal"
    conditions: list[str] = []
    if rule.groups is not None:
        if len(rule.groups) == 1:
            principal = f'principal in Group::"{rule.groups[0]}"'
        else:
            conditions.append(f"principal in {_cedar_list(rule.groups, 'Group')}")
    action = "action"
    if rule.methods is not None:
        action = f"action in {_cedar_list(rule.methods, 'Action')}"
    if rule.paths is not None:
        conditions.append("(" + " || ".join(f'context.path like "{p}"' for p in rule.paths) + ")")
    if rule.cidr is not None:
        conditions.append(
            "(" + " || ".join(f'context.source_ip.isInRange(ip("{c}"))' for c in rule.cidr) + ")"
        )
    for c in rule.not_cidr or ():
        conditions.append(f'!context.source_ip.isInRange(ip("{c}"))')
    when = f" when {{ {' && '.join(conditions)} }}" if conditions else ""
    return (
        f'@id("{rule.app}/{rule.name}")\n'
        f'{keyword}({principal}, {action}, resource == App::"{rule.app}"){when};'
    )


def cedar_entities(workload: Workload) -> list[dict[str, Any]]:
    groups = sorted({g for gs in workload.users.values() for g in gs})
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "Group", "id": g}, "attrs": {}, "parents": []} for g in groups
    ]
    for user, user_groups in sorted(workload.users.items()):
        entities.append(
            {
                "uid": {"type": "User", "id": user},
                "attrs": {},
                "parents": [{"type": "Group", "id": g} for g in user_groups],
            }
        )
    return entities


def cedar_request(s: Sample) -> dict[str, Any]:
    return {
        "principal": {"type": "User", "id": s.user},
        "action": {"type": "Action", "id": s.method},
        "resource": {"type": "App", "id": s.app},
        "context": {"path": s.path, "source_ip": {"__extn": {"fn": "ip", "arg": s.ip}}},
    }


def cedar_engine(workload: Workload, *, sliced: bool) -> Engine:
    try:
        import cedarpy
    except ImportError as exc:
        raise Skip(f"cedarpy not importable ({exc}); pip install cedarpy") from exc
    started = time.perf_counter()
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities(workload)))
    is_authorized = cedarpy.is_authorized
    if sliced:
        texts: dict[str, list[str]] = {app: [] for app in workload.apps}
        for rule in workload.rules:
            texts[rule.app].append(cedar_policy(rule))
        slices = {app: cedarpy.PolicySet.from_str("\n".join(t)) for app, t in texts.items()}

        def call(request: dict[str, Any]) -> Any:
            return is_authorized(request, slices[request["resource"]["id"]], entities)

        variant, notes = "per-app", "one PolicySet per app, chosen by the request's app"
    else:
        everything = cedarpy.PolicySet.from_str("\n".join(cedar_policy(r) for r in workload.rules))

        def call(request: dict[str, Any]) -> Any:
            return is_authorized(request, everything, entities)

        variant, notes = "full-set", "one PolicySet holding every rule"
    setup = time.perf_counter() - started
    return Engine(
        "cedarpy",
        variant,
        _version("cedarpy"),
        cedar_request,
        call,
        lambda result: bool(result.allowed),
        setup,
        notes + "; policies and entities parsed once (PolicySet, Entities handles)",
    )


CASBIN_MODEL = """\
[request_definition]
r = sub, app, path, method, ip

[policy_definition]
p = sub, app, path, method, cidr, notcidr, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.app == p.app && (p.sub == "*" || g(r.sub, p.sub)) && keyMatch(r.path, p.path) \
&& (p.method == "*" || regexMatch(r.method, p.method)) \
&& (p.cidr == "*" || ipMatch(r.ip, p.cidr)) && (p.notcidr == "*" || !ipMatch(r.ip, p.notcidr))
"""


def casbin_policies(workload: Workload) -> tuple[list[list[str]], list[list[str]]]:
    """One ``p`` line per rule and group (casbin has no any-of-groups), ``g`` user -> group."""
    lines: list[list[str]] = []
    for rule in workload.rules:
        method = "*" if rule.methods is None else f"^({'|'.join(rule.methods)})$"
        paths = rule.paths or ("*",)
        cidrs = rule.cidr or ("*",)
        not_cidr = "*"
        if rule.not_cidr is not None:
            if len(rule.not_cidr) != 1:
                raise ValueError("the casbin model takes one not_cidr per line")
            not_cidr = rule.not_cidr[0]
        for sub in rule.groups or ("*",):
            for path in paths:
                for cidr in cidrs:
                    lines.append([sub, rule.app, path, method, cidr, not_cidr, rule.effect])
    grouping = [[user, g] for user, groups in sorted(workload.users.items()) for g in groups]
    return lines, grouping


def casbin_engine(workload: Workload) -> Engine:
    try:
        import casbin
        from casbin.model import Model
    except ImportError as exc:
        raise Skip(f"casbin not importable ({exc}); pip install casbin") from exc
    logging.getLogger("casbin").setLevel(logging.WARNING)
    started = time.perf_counter()
    model = Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    lines, grouping = casbin_policies(workload)
    enforcer.add_policies(lines)
    enforcer.add_grouping_policies(grouping)
    setup = time.perf_counter() - started
    enforce = enforcer.enforce
    return Engine(
        "casbin",
        "rbac-keymatch",
        _version("casbin"),
        lambda s: (s.user, s.app, s.path, s.method, s.ip),
        lambda args: enforce(*args),
        lambda result: result is True,
        setup,
        f"{len(lines)} p lines (one per rule and group), {len(grouping)} g lines",
    )


BUILDERS: dict[str, Callable[[Workload], Engine]] = {
    "nevertrust": nevertrust_engine,
    "regorus": regorus_engine,
    "cedarpy": lambda w: cedar_engine(w, sliced=True),
    "casbin": casbin_engine,
    "opa": opa_engine,
}
VARIANT_BUILDERS: dict[str, Callable[[Workload], Engine]] = {
    "cedarpy": lambda w: cedar_engine(w, sliced=False),
}


# Measurement


@dataclass(frozen=True)
class Budget:
    check_s: float  # sanity check, which is also the warm-up
    latency_s: float
    throughput_s: float


FULL = Budget(check_s=1.0, latency_s=1.0, throughput_s=1.0)
QUICK = Budget(check_s=0.5, latency_s=0.4, throughput_s=0.4)


@dataclass
class Cell:
    engine: str
    variant: str
    rules: int
    decisions_per_s: float
    decisions_per_cpu_s: float  # steadier than decisions_per_s on a shared machine
    p50_us: float
    p99_us: float
    p50_us_with_input: float  # including building the native input from the request
    by_outcome_us: dict[str, dict[str, float]]  # p50/p99 of allowed and denied requests
    latency_calls: int
    throughput_calls: int
    checked: int
    mismatches: list[dict[str, Any]]
    setup_s: float


def _percentile(ordered: Sequence[int], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[index])


def check(
    engine: Engine, workload: Workload, expected: Sequence[bool], budget_s: float
) -> tuple[int, list[dict[str, Any]]]:
    """Decide the requests in turn within the budget (at least CHECK_MIN, all of them for
    any engine but the slowest) and compare with NeverTrust. Doubles as the warm-up."""
    deadline = time.perf_counter() + budget_s
    mismatches: list[dict[str, Any]] = []
    checked = 0
    for sample, want in zip(workload.requests, expected, strict=True):
        got = engine.allowed(engine.call(engine.prepare(sample)))
        checked += 1
        if got != want:
            mismatches.append({"request": _sample(sample), "nevertrust": want, "got": got})
        if checked >= CHECK_MIN and time.perf_counter() > deadline:
            break
    return checked, mismatches


def _sample(s: Sample) -> dict[str, Any]:
    return {
        "user": s.user,
        "groups": list(s.groups),
        "app": s.app,
        "method": s.method,
        "path": s.path,
        "ip": s.ip,
    }


@dataclass
class Latencies:
    calls: list[int] = field(default_factory=list)
    with_input: list[int] = field(default_factory=list)
    allowed: list[int] = field(default_factory=list)  # the calls, split by expected outcome
    denied: list[int] = field(default_factory=list)


def measure_latency(
    engine: Engine,
    samples: Sequence[Sample],
    inputs: Sequence[Any],
    expected: Sequence[bool],
    seconds: float,
) -> Latencies:
    """Time each call alone; also (from the same loop) input building plus the call."""
    clock = time.perf_counter_ns
    call, prepare = engine.call, engine.prepare
    out = Latencies()
    n = len(inputs)
    half = n // 2
    i = 0
    deadline = clock() + int(seconds * 1e9)
    while True:
        sample = samples[i]
        t0 = clock()
        call(prepare(sample))
        t1 = clock()
        out.with_input.append(t1 - t0)
        j = (i + half) % n  # another request than the one just decided
        t2 = clock()
        call(inputs[j])
        t3 = clock()
        out.calls.append(t3 - t2)
        (out.allowed if expected[j] else out.denied).append(t3 - t2)
        i = (i + 1) % n
        if t3 > deadline and len(out.calls) >= 5:
            break
    for series in (out.calls, out.with_input, out.allowed, out.denied):
        series.sort()
    return out


def measure_throughput(
    engine: Engine, inputs: Sequence[Any], seconds: float, p50_ns: float
) -> tuple[float, float, int]:
    """Calls back to back over the prepared inputs; the clock is read once per chunk.
    Returns decisions per second of wall time, per second of process CPU time, and calls."""
    call = engine.call
    chunk = max(1, min(len(inputs), int(20e6 / max(p50_ns, 1.0))))  # ~20 ms per chunk
    chunks = [inputs[k : k + chunk] for k in range(0, len(inputs), chunk)]
    calls = 0
    clock, cpu = time.perf_counter, time.process_time
    start, cpu_start = clock(), cpu()
    deadline = start + seconds
    while True:
        for part in chunks:
            for item in part:
                call(item)
            calls += len(part)
            if clock() >= deadline:
                elapsed, cpu_used = clock() - start, cpu() - cpu_start
                return calls / elapsed, calls / cpu_used if cpu_used > 0 else 0.0, calls


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    noop = _noop
    spans = []
    for _ in range(100_000):
        t0 = clock()
        noop(None)
        spans.append(clock() - t0)
    spans.sort()
    return _percentile(spans, 50)


def _noop(_value: object) -> None:
    return None


def measure(engine: Engine, workload: Workload, expected: Sequence[bool], budget: Budget) -> Cell:
    checked, mismatches = check(engine, workload, expected, budget.check_s)
    samples = workload.requests
    inputs = [engine.prepare(s) for s in samples]
    gc.collect()
    lat = measure_latency(engine, samples, inputs, expected, budget.latency_s)
    p50 = _percentile(lat.calls, 50)
    rate, cpu_rate, done = measure_throughput(engine, inputs, budget.throughput_s, p50)
    return Cell(
        engine=engine.name,
        variant=engine.variant,
        rules=workload.size,
        decisions_per_s=rate,
        decisions_per_cpu_s=cpu_rate,
        p50_us=p50 / 1000,
        p99_us=_percentile(lat.calls, 99) / 1000,
        p50_us_with_input=_percentile(lat.with_input, 50) / 1000,
        by_outcome_us={
            label: {
                "p50": round(_percentile(series, 50) / 1000, 3),
                "p99": round(_percentile(series, 99) / 1000, 3),
                "calls": len(series),
            }
            for label, series in (("allowed", lat.allowed), ("denied", lat.denied))
        },
        latency_calls=len(lat.calls),
        throughput_calls=done,
        checked=checked,
        mismatches=mismatches,
        setup_s=engine.setup_s,
    )


# NeverTrust alone: where one decision's time goes (public API only) and a profile


def _median_ns(fn: Callable[[], object], rounds: int = 20_000) -> float:
    clock = time.perf_counter_ns
    spans = []
    for _ in range(rounds):
        t0 = clock()
        fn()
        spans.append(clock() - t0)
    spans.sort()
    return _percentile(spans, 50)


def nevertrust_breakdown(workload: Workload, expected: Sequence[bool]) -> dict[str, Any]:
    """Median cost of the pieces of one decision, for one allowed and one denied request.

    ``decide`` = guard + enabled check + app lookup + ``evaluate_ruleset``; the latter
    runs the deny rules, then the allow rules, then builds the Decision (on a denial, the
    near-miss trace of every allow rule). Each figure but condition_tests_ns includes
    empty_call_ns: calling a function that does nothing and reading the clock.
    """
    from nevertrust.domain import Decision, Reason

    compiled = compile_nevertrust(workload)
    snapshot = compiled.snapshot
    empty = _median_ns(partial(_noop, None))
    out: dict[str, Any] = {"rules": workload.size, "empty_call_ns": empty}
    for label, want in (("allowed", True), ("denied", False)):
        sample = next(
            (s for s, e in zip(workload.requests, expected, strict=True) if e is want), None
        )
        if sample is None:
            continue
        request = access_request(compiled, sample)
        rules = snapshot.apps[sample.app].enforced
        out[label] = {
            "request": _sample(sample),
            "decide_ns": _median_ns(partial(decide, request, snapshot, NOW)),
            "evaluate_ruleset_ns": _median_ns(partial(evaluate_ruleset, rules, request, NOW)),
            "access_request_ns": _median_ns(partial(access_request, compiled, sample)),
            # Each condition of the app's rules alone (deny rules first, as decided), less
            # the cost of an empty call; decide() stops at a rule's first failed condition.
            "condition_tests_ns": {
                f"{rule.rule_id} {c.name}": round(
                    _median_ns(partial(c.test, request, NOW), 5_000) - empty
                )
                for rule in rules.deny + rules.allow
                for c in rule.conditions
            },
        }
    out["decision_allow_ns"] = _median_ns(
        lambda: Decision.allow(Reason.ALLOWED_BY_RULE, rule_id="p/r", detail="rule p/r")
    )
    return out


def profile_nevertrust(workload: Workload, path: Path, calls: int) -> list[str]:
    """cProfile of decide() over the workload's requests; the stats are dumped to ``path``
    (read with ``python -m pstats PATH``). cProfile inflates small calls: read it for
    the shares, not the absolute times."""
    compiled = compile_nevertrust(workload)
    snapshot = compiled.snapshot
    inputs = [access_request(compiled, s) for s in workload.requests]
    n = len(inputs)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(calls):
        decide(inputs[i % n], snapshot, NOW)
    profiler.disable()
    profiler.dump_stats(str(path))
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(15)
    return [line for line in buffer.getvalue().splitlines() if line.strip()]


# The run


@dataclass(frozen=True)
class Options:
    quick: bool
    sizes: tuple[int, ...]
    engines: tuple[str, ...]
    budget: Budget
    profile: Path | None


def _parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="1,000 rules only, short cells")
    parser.add_argument(
        "--sizes", help=f"comma-separated rule counts, multiples of 10 (default {SIZES})"
    )
    parser.add_argument(
        "--engines", help=f"comma-separated subset of {', '.join(ENGINE_ORDER)} (default all)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="also cProfile NeverTrust's decide() at 1,000 rules and dump the stats to PATH",
    )
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        try:
            sizes = tuple(int(x) for x in args.sizes.split(","))
        except ValueError:
            parser.error("--sizes takes integers, e.g. 100,1000")
        if any(n <= 0 or n % RULES_PER_APP or n > 100_000 for n in sizes):
            parser.error(f"--sizes: multiples of {RULES_PER_APP} up to 100000")
    engines = ENGINE_ORDER
    if args.engines:
        engines = tuple(e.strip() for e in args.engines.split(","))
        unknown = set(engines) - set(ENGINE_ORDER)
        if unknown or "nevertrust" not in engines:
            parser.error(f"--engines: from {ENGINE_ORDER}, nevertrust included")
    return Options(
        quick=args.quick,
        sizes=sizes,
        engines=engines,
        budget=QUICK if args.quick else FULL,
        profile=args.profile,
    )


def _row(cell: Cell) -> dict[str, Any]:
    return {
        "engine": cell.engine,
        "rules": cell.rules,
        "decisions_per_s": round(cell.decisions_per_s, 1),
        "p50_us": round(cell.p50_us, 3),
        "p99_us": round(cell.p99_us, 3),
    }


def _detail(cell: Cell) -> dict[str, Any]:
    return {
        "engine": cell.engine,
        "variant": cell.variant,
        "rules": cell.rules,
        "decisions_per_cpu_s": round(cell.decisions_per_cpu_s, 1),
        "p50_us_with_input": round(cell.p50_us_with_input, 3),
        "by_outcome_us": cell.by_outcome_us,
        "latency_calls": cell.latency_calls,
        "throughput_calls": cell.throughput_calls,
        "checked": cell.checked,
        "mismatches": len(cell.mismatches),
        "setup_s": round(cell.setup_s, 3),
    }


def _build(
    name: str, builder: Callable[[Workload], Engine], workload: Workload
) -> tuple[Engine | None, str | None]:
    try:
        return builder(workload), None
    except Skip as exc:
        return None, str(exc)
    except Exception as exc:
        if name == "nevertrust":
            raise
        return None, f"setup failed at {workload.size} rules: {type(exc).__name__}: {exc}"


def _goals(cells: list[Cell], sizes: Sequence[int], excluded: set[str]) -> dict[str, Any]:
    by = {(c.engine, c.rules): c for c in cells}
    per_size: dict[str, Any] = {}
    for size in sizes:
        if size not in GOAL_SIZES:
            continue
        ours = by.get(("nevertrust", size))
        peer = by.get((BASELINE, size)) if BASELINE not in excluded else None
        if ours is None:
            continue
        ratio = ours.decisions_per_s / peer.decisions_per_s if peer else None
        per_size[str(size)] = {
            "p50_us": round(ours.p50_us, 3),
            "p50_met": ours.p50_us <= GOAL_P50_US,
            "p99_us": round(ours.p99_us, 3),
            "p99_met": ours.p99_us <= GOAL_P99_US,
            "ratio_vs_regorus": None if ratio is None else round(ratio, 2),
            "ratio_met": None if ratio is None else ratio >= GOAL_RATIO_VS_REGORUS,
        }
    verdicts = [v for entry in per_size.values() for k, v in entry.items() if k.endswith("_met")]
    return {
        "sizes": list(GOAL_SIZES),
        "p50_us_max": GOAL_P50_US,
        "p99_us_max": GOAL_P99_US,
        "min_ratio_vs_regorus": GOAL_RATIO_VS_REGORUS,
        "per_size": per_size,
        # None: something could not be judged (no goal size measured, or no regorus).
        "met": False if False in verdicts else (None if not per_size or None in verdicts else True),
    }


class Disagreement(Exception):
    """NeverTrust itself decides differently from the workload's reference: no claim holds."""


@dataclass
class Run:
    cells: list[Cell] = field(default_factory=list)
    variant_cells: list[Cell] = field(default_factory=list)
    skipped: dict[tuple[str, bool], str] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    workloads: dict[str, Any] = field(default_factory=dict)


def _verify_nevertrust(engine: Engine, workload: Workload, reference: Sequence[bool]) -> None:
    ours = [engine.allowed(engine.call(engine.prepare(s))) for s in workload.requests]
    if ours != list(reference):
        bad = [s for s, a, b in zip(workload.requests, ours, reference, strict=True) if a != b]
        raise Disagreement(
            f"NeverTrust disagrees with the workload's reference on {len(bad)} of {len(ours)} "
            f"requests at {workload.size} rules, e.g. {_sample(bad[0])}"
        )


def run_size(size: int, opts: Options, run: Run) -> None:
    workload = make_workload(size)
    reference = reference_allowed(workload)
    allowed_share = sum(reference) / len(reference)
    run.workloads[str(size)] = {
        "rules": size,
        "apps": len(workload.apps),
        "requests": len(workload.requests),
        "allowed_share": round(allowed_share, 3),
    }
    print(
        f"pdp: {size} rules, {len(workload.apps)} apps, "
        f"{allowed_share:.0%} of {len(workload.requests)} requests allowed",
        flush=True,
    )
    plan = [(n, BUILDERS[n], False) for n in opts.engines]
    plan += [(n, VARIANT_BUILDERS[n], True) for n in opts.engines if n in VARIANT_BUILDERS]
    for name, builder, is_variant in plan:
        if (name, is_variant) in run.skipped or (name, False) in run.skipped:
            continue
        engine, reason = _build(name, builder, workload)
        if engine is None:
            reason = ("variant: " if is_variant else "") + (reason or "unknown")
            run.skipped[(name, is_variant)] = reason
            print(f"pdp:   {name}: skipped ({reason})", flush=True)
            continue
        try:
            if name == "nevertrust":
                _verify_nevertrust(engine, workload, reference)
            cell = measure(engine, workload, reference, opts.budget)
        except Exception as exc:
            if name == "nevertrust":
                raise
            reason = f"{engine.variant} failed at {size} rules: {type(exc).__name__}: {exc}"
            run.skipped[(name, is_variant)] = reason
            print(f"pdp:   {name}: skipped ({reason})", flush=True)
            continue
        finally:
            engine.close()
        run.versions[name] = engine.version
        run.notes[f"{name}/{engine.variant}"] = engine.notes
        (run.variant_cells if is_variant else run.cells).append(cell)
        if cell.mismatches:
            run.mismatches.append(
                {
                    "engine": name,
                    "variant": cell.variant,
                    "in_results": not is_variant,  # else only the variant is excluded
                    "rules": size,
                    "count": len(cell.mismatches),
                    "checked": cell.checked,
                    "examples": cell.mismatches[:3],
                }
            )
        print(
            f"pdp:   {name:<10} {cell.variant:<13} {cell.decisions_per_s:>11.0f}/s"
            f"  p50 {cell.p50_us:>9.2f} us  p99 {cell.p99_us:>9.2f} us"
            f"  checked {cell.checked}{' MISMATCH' if cell.mismatches else ''}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    opts = _parse_args(sys.argv[1:] if argv is None else argv)
    load_before = loadavg()
    started = time.monotonic()
    run = Run()
    overhead = timer_overhead_ns()
    with terminate_on_sigterm():
        try:
            for size in opts.sizes:
                run_size(size, opts, run)
        except Disagreement as exc:
            print(f"pdp: {exc}", file=sys.stderr)
            return 1
        cells, variant_cells, mismatches = run.cells, run.variant_cells, run.mismatches
        excluded = {m["engine"] for m in mismatches if m["in_results"]}
        breakdown = nevertrust_breakdown(
            make_workload(1000), reference_allowed(make_workload(1000))
        )
        profile_top: list[str] | None = None
        if opts.profile is not None:
            profile_top = profile_nevertrust(
                make_workload(1000), opts.profile, 50_000 if opts.quick else 200_000
            )

    ratios: dict[str, float | None] = {}
    cpu_ratios: dict[str, float | None] = {}
    by = {(c.engine, c.rules): c for c in cells}
    for size in opts.sizes:
        ours, peer = by.get(("nevertrust", size)), by.get((BASELINE, size))
        ratios[str(size)] = cpu_ratios[str(size)] = None
        if ours is None or peer is None or BASELINE in excluded:
            continue
        ratios[str(size)] = round(ours.decisions_per_s / peer.decisions_per_s, 2)
        if peer.decisions_per_cpu_s:
            cpu_ratios[str(size)] = round(ours.decisions_per_cpu_s / peer.decisions_per_cpu_s, 2)
    goals = _goals(cells, opts.sizes, excluded)
    report: dict[str, Any] = {
        "results": [_row(c) for c in cells],
        "skipped": [{"engine": n, "reason": r} for (n, _v), r in run.skipped.items()],
        "ratio_nevertrust_vs_regorus": ratios,
        # The same from decisions per CPU-second: steadier when the machine is shared.
        "ratio_nevertrust_vs_regorus_cpu": cpu_ratios,
        "goals": goals,
        "mismatches": mismatches,
        "excluded_from_claims": sorted(excluded),
        "variants": [_row(c) | {"variant": c.variant} for c in variant_cells],
        "details": [_detail(c) for c in cells + variant_cells],
        "nevertrust_breakdown": breakdown,
        "profile": None
        if opts.profile is None
        else {"path": str(opts.profile), "top_by_tottime": profile_top},
        "workload": {
            "shape": make_workload.__doc__.strip() if make_workload.__doc__ else "",
            "rules_per_app": RULES_PER_APP,
            "groups": GROUPS,
            "users": USERS,
            "user_groups": "1-4 each",
            "requests": REQUESTS,
            "request_mix": "app uniform; user: 75% one granted the app by an allow-N group, "
            "25% anyone; "
            "methods GET 60, POST 15, DELETE 10, PUT 5, HEAD 5, PATCH 5 (%); "
            "IPs 60% 10.0-3.x.x, 40% TEST-NET",
            "seed": SEED,
            "per_size": run.workloads,
        },
        "method": {
            "latency": "perf_counter_ns around each call on a prepared input (the engine's "
            "native request: AccessRequest, dict, tuple); conversions inside the engine's API "
            "(JSON encoding/decoding) are included; p50_us_with_input also builds the input",
            "throughput": "calls back to back over the prepared inputs, clock read per chunk",
            "budget_s": {
                "check_and_warmup": opts.budget.check_s,
                "latency": opts.budget.latency_s,
                "throughput": opts.budget.throughput_s,
            },
            "timer_overhead_ns": overhead,
            "check": "each engine against NeverTrust on the requests in turn within the "
            f"check budget (at least {CHECK_MIN}: details[].checked); NeverTrust against a "
            "naive reference on every request",
        },
        "versions": run.versions,
        "notes": run.notes,
        "quick": opts.quick,
        "machine": machine(load_before),
        "wall_s": round(time.monotonic() - started, 1),
    }
    out = write_results("pdp", report)
    _print_report(report, cells + variant_cells, out)
    return 0


def _print_report(report: dict[str, Any], cells: list[Cell], out: Path) -> None:
    print(f"\npolicy decisions in-process ({'quick' if report['quick'] else 'full'} run)")
    print(
        f"  {'engine':<10} {'variant':<13} {'rules':>6} {'decisions/s':>12}"
        f" {'p50 us':>9} {'p99 us':>9} {'p50+input':>10} {'dec/CPU-s':>10}"
    )
    for cell in sorted(cells, key=lambda c: (c.rules, ENGINE_ORDER.index(c.engine))):
        flag = "  MISMATCH" if cell.mismatches else ""
        print(
            f"  {cell.engine:<10} {cell.variant:<13} {cell.rules:>6} {cell.decisions_per_s:>12.0f}"
            f" {cell.p50_us:>9.2f} {cell.p99_us:>9.2f} {cell.p50_us_with_input:>10.2f}"
            f" {cell.decisions_per_cpu_s:>10.0f}{flag}"
        )
    cpu_ratios = report["ratio_nevertrust_vs_regorus_cpu"]
    for size, ratio in report["ratio_nevertrust_vs_regorus"].items():
        shown = "n/a" if ratio is None else f"{ratio:.1f}x"
        cpu = cpu_ratios.get(size)
        print(
            f"  nevertrust/regorus decisions/s at {size} rules: {shown}"
            + ("" if cpu is None else f" (per CPU-second: {cpu:.1f}x)")
        )
    for item in report["skipped"]:
        print(f"  skipped {item['engine']}: {item['reason']}")
    for item in report["mismatches"]:
        print(
            f"  MISMATCH {item['engine']} ({item['variant']}) at {item['rules']} rules: "
            f"{item['count']} of {item['checked']} requests differ from NeverTrust"
        )
    goals = report["goals"]
    print(
        f"  goals (p50 <= {GOAL_P50_US:g} us, p99 <= {GOAL_P99_US:g} us, "
        f">= {GOAL_RATIO_VS_REGORUS:g}x regorus at {', '.join(map(str, GOAL_SIZES))} rules): "
        + {True: "met", False: "NOT met", None: "not judged"}[goals["met"]]
    )
    for size, entry in goals["per_size"].items():
        print(f"    {size}: {entry}")
    if report["profile"]:
        print(f"  profile of decide() at 1000 rules: {report['profile']['path']}")
    busy = max(
        report["machine"]["loadavg_1m_before"] or 0.0, report["machine"]["loadavg_1m_after"] or 0.0
    )
    cpus = os.cpu_count() or 1
    if busy > cpus:
        print(f"  note: load average {busy:.1f} on {cpus} CPUs: other work shared the machine")
    print(f"  written to {out.relative_to(BENCH_DIR.parent)} in {report['wall_s']:.0f}s")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"pdp: interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
