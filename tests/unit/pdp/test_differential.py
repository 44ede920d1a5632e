"""The compiled engine agrees with the naive reference interpreter on random policies.

Value domains are small on purpose, so that conditions hold often enough for every
branch of the decision order (deny, default deny, require-device, step-up, allow) to be
reached, and so that boundary values (ages, minutes, address families) come up.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nevertrust.domain import AccessRequest, AccessRule, App, DeviceState, Principal, RiskLevel
from nevertrust.pdp import PolicyDocument, compile_snapshot, decide
from nevertrust.pdp.reference import reference_decide

APPS = (
    App("alpha", "http://alpha", labels={"tier": "prod", "team": "ops"}),
    App("beta", "http://beta", labels={"tier": "dev"}),
    App("gamma", "http://gamma"),
)
APP_NAMES = ["alpha", "beta", "gamma", "ghost"]
USERS = ["alice", "bob", "carol"]
GROUPS = ["eng", "ops", "hr"]
ROLES = ["admin", "viewer"]
AUTH = ["pwd", "otp", "webauthn", "hwk", "mfa", "sso", "recovery"]
PLATFORMS = ["linux", "macos", "windows"]
CIDRS = ["10.0.0.0/8", "10.1.2.3/32", "192.168.1.0/24", "2001:db8::/32", "10.0.0.1/16"]
SOURCES = ["", "10.1.2.3", "10.2.0.1", "192.168.1.5", "8.8.8.8", "2001:db8::1", "::1", "bogus"]
COUNTRIES = ["DE", "US", "FR"]
DAYS = ["mon", "fri", "sun", "mon-fri", "fri-mon", "sat-sun", "wed-wed", "sun-mon"]
HOURS = ["08:00-18:00", "22:00-06:00", "00:00-24:00", "12:00-12:30", "23:59-00:01"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
DURATIONS: list[str | int] = ["0s", "59s", 60, "5m", 300, " 15 m", "1h", "1d"]
METHODS = ["GET", "POST", "DELETE"]
PATTERNS = ["/", "/*", "/admin/*", "/api/?", "/*.json", "/a[1]", "/a*b"]
PATHS = ["/", "/admin/", "/admin/x/y", "/api/1", "/api/12", "/x.json", "/a/b.json", "/a1"]
PATHS += ["/a[1]", "/ab", "/a/x/b"]
POSTURE_KEYS = ["disk", "os", "score"]
POSTURE_VALUES: list[str | int | float | bool] = [True, False, "14", 1, 1.0, 0]
# Offsets of the sign-in before now, in seconds: on and around the durations above.
AGES = [0, 1, 59, 60, 61, 299, 300, 301, 900, 901, 3600, 3601, 86400, 86401, -5]


def some(
    values: list[Any], *, min_size: int = 1, max_size: int = 3
) -> st.SearchStrategy[list[Any]]:
    """A small subset of ``values``, drawn in one step: drawing is the slow part."""
    subsets = [
        list(combo)
        for size in range(min_size, min(max_size, len(values)) + 1)
        for combo in itertools.combinations(values, size)
    ]
    # The empty list is an edge worth hitting: about one draw in ten where it is allowed.
    return st.sampled_from(subsets + [[]] * (len(subsets) // 9 if min_size == 0 else 0))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def fields(draw: st.DrawFn, /, **choices: st.SearchStrategy[Any]) -> dict[str, Any]:
    """One or two of ``choices``, each drawn: a device/source/time/http condition."""
    names = draw(some(sorted(choices), max_size=2))
    return {name: draw(choices[name]) for name in names}


CONDITIONS: dict[str, st.SearchStrategy[Any]] = {
    "users": some(USERS),
    "groups": some(GROUPS),
    "roles": some(ROLES),
    "auth_methods": some(AUTH, min_size=0),
    "mfa_max_age": st.sampled_from(DURATIONS),
    "device": fields(
        compliant=st.booleans(),
        managed=st.booleans(),
        platform=some(PLATFORMS, min_size=0),
        posture=st.dictionaries(
            st.sampled_from(POSTURE_KEYS), st.sampled_from(POSTURE_VALUES), max_size=2
        ),
    ),
    "source": fields(
        cidr=some(CIDRS, min_size=0),
        not_cidr=some(CIDRS, min_size=0),
        country=some(COUNTRIES, min_size=0),
    ),
    "time": fields(
        days=some(DAYS, min_size=0),
        hours=st.sampled_from(HOURS),
        timezone=st.sampled_from(ZONES),
    ),
    "risk_max": st.sampled_from([level.value for level in RiskLevel]),
    "http": fields(methods=some(METHODS, min_size=0), paths=some(PATTERNS, min_size=0)),
}


@st.composite
def whens(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        return {}  # unconditional rules make the later steps (device, step-up) reachable
    chosen = draw(some(sorted(CONDITIONS), max_size=2))
    return {name: draw(CONDITIONS[name]) for name in chosen}


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    effect = draw(st.sampled_from(["allow"] * 3 + ["deny", "step-up", "require-device"]))
    rule: dict[str, Any] = {"name": f"r{index}", "effect": effect, "when": draw(whens())}
    if effect == "step-up" and draw(st.booleans()):
        rule["step_up"] = draw(
            fields(
                methods=some(["otp", "webauthn", "hwk", "pwd"]), max_age=st.sampled_from(DURATIONS)
            )
        )
    return rule


TARGETS: list[dict[str, Any]] = [
    {"apps": ["*"]},
    {"apps": ["*"]},
    {"apps": ["*"]},
    {"apps": ["alpha"]},
    {"apps": ["alpha", "beta", "ghost"]},
    {"apps": []},
    {"app_labels": {"tier": "prod"}},
    {"app_labels": {"tier": "prod", "team": "ops"}},
    {"app_labels": {"team": "dev"}},
    {"apps": ["beta"], "app_labels": {"tier": "prod"}},
    {"apps": ["gamma"], "app_labels": {"team": "ops"}},
]


@st.composite
def policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    return {
        "name": f"p{index}",
        "mode": draw(st.sampled_from(["enforce", "enforce", "enforce", "report-only", "disabled"])),
        **draw(st.sampled_from(TARGETS)),
        "rules": [draw(rules(i)) for i in range(draw(st.integers(1, 3)))],
    }


@st.composite
def documents(draw: st.DrawFn) -> PolicyDocument:
    count = draw(st.integers(1, 4))
    return PolicyDocument.model_validate({"policies": [draw(policies(i)) for i in range(count)]})


access_rules = st.lists(
    st.builds(
        lambda i, app, group, device: AccessRule(f"allow:{app}:{group}:{i}", app, group, device),
        st.integers(0, 99),
        st.sampled_from(APP_NAMES),
        st.sampled_from(GROUPS),
        st.booleans(),  # --require-compliant-device
    ),
    max_size=3,
)

devices = st.builds(
    DeviceState,
    device_id=st.just("d1"),
    compliant=st.booleans(),
    managed=st.booleans(),
    platform=st.sampled_from(["", *PLATFORMS]),
    posture=st.dictionaries(st.sampled_from(POSTURE_KEYS), st.sampled_from(POSTURE_VALUES)),
)

# Minutes of the day on and next to the edges of HOURS.
EDGES = sorted(
    {(m + d) % 1440 for m in (0, 360, 480, 720, 750, 1080, 1320, 1439) for d in (-1, 0, 1)}
)


def instants_in(zone: str, minutes: list[int]) -> st.SearchStrategy[datetime]:
    """Anywhen (in UTC), or one of ``minutes`` as local time in ``zone`` on some day."""
    return st.one_of(
        st.datetimes(
            min_value=datetime(2026, 1, 1),
            max_value=datetime(2027, 12, 31),
            timezones=st.just(UTC),
        ),
        st.builds(
            lambda day, minute: (
                datetime(2026, 3, 1, tzinfo=ZoneInfo(zone)) + timedelta(days=day, minutes=minute)
            ).astimezone(UTC),
            st.integers(0, 300),  # spans the spring and autumn clock changes
            st.sampled_from(minutes),
        ),
    )


instants = st.sampled_from(ZONES).flatmap(lambda zone: instants_in(zone, EDGES))


@st.composite
def requests(draw: st.DrawFn, now: datetime) -> AccessRequest:
    age = draw(maybe(st.sampled_from(AGES)))
    principal = Principal(
        user_id=1,
        name=draw(st.sampled_from([*USERS, "dave"])),
        groups=frozenset(draw(some(GROUPS, min_size=0))),
        roles=frozenset(draw(some(ROLES, min_size=0))),
        enabled=draw(st.sampled_from([True] * 9 + [False])),
    )
    return AccessRequest(
        principal=principal,
        app=draw(st.sampled_from(["alpha", "beta", "gamma"] * 3 + ["ghost"])),
        method=draw(st.sampled_from([*METHODS, "PUT"])),
        path=draw(st.sampled_from(PATHS)),
        source_ip=draw(st.sampled_from(SOURCES)),
        auth_methods=frozenset(draw(some(AUTH, min_size=0))),
        auth_time=None if age is None else now - timedelta(seconds=age),
        device=draw(maybe(devices)),
        country=draw(maybe(st.sampled_from(COUNTRIES))),
        risk=draw(maybe(st.sampled_from(list(RiskLevel)))),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[PolicyDocument, list[AccessRule], datetime, list[Any]]:
    document = draw(documents())
    group_rules = draw(access_rules)
    now = draw(instants)
    return document, group_rules, now, draw(st.lists(requests(now), min_size=2, max_size=10))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_compiled_engine_agrees_with_the_reference_interpreter(
    case: tuple[PolicyDocument, list[AccessRule], datetime, list[AccessRequest]],
) -> None:
    document, group_rules, now, batch = case
    snapshot = compile_snapshot(version=1, apps=APPS, rules=group_rules, policies=document)
    for request in batch:
        decision = decide(request, snapshot, now)
        expected = reference_decide(
            request, apps=APPS, rules=group_rules, policies=document, now=now
        )
        assert (decision.effect, decision.reasons[0]) == expected, (request, decision)
        # Explaining (the gateway does on denials) adds words, never changes the outcome.
        explained = decide(request, snapshot, now, explain=True)
        assert (explained.effect, explained.reasons, explained.rule_id) == (
            decision.effect,
            decision.reasons,
            decision.rule_id,
        )

        # Report-only policies: the shadow is there exactly when it would decide otherwise.
        would = reference_decide(
            request, apps=APPS, rules=group_rules, policies=document, now=now, report_only=True
        )
        if would[0] is decision.effect:
            assert decision.shadow is None
        else:
            assert decision.shadow is not None
            assert (decision.shadow.effect, decision.shadow.reasons[0]) == would


def _edges(hours: str) -> list[int]:
    start, end = ((int(t[:2]) * 60 + int(t[3:])) for t in hours.split("-"))
    return sorted({(m + d) % 1440 for m in (start, end) for d in (-1, 0, 1)})


@st.composite
def one_condition(
    draw: st.DrawFn, kind: str
) -> tuple[dict[str, Any], list[tuple[datetime, AccessRequest]]]:
    when = {kind: draw(CONDITIONS[kind])}
    # Time conditions are tested most where they change: around their own window's edges.
    time = when.get("time", {})
    edges = _edges(time["hours"]) if "hours" in time else EDGES
    near = instants_in(time.get("timezone", "UTC"), edges)
    batch = []
    for _ in range(5):
        now = draw(near)
        batch.append((now, draw(requests(now))))
    return when, batch


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_each_kind_of_condition_holds_exactly_when_the_reference_says(
    kind: str, data: st.DataObject
) -> None:
    # One allow rule with one kind of condition: allowed exactly when it holds.
    when, batch = data.draw(one_condition(kind))
    rule = {"name": "r", "effect": "allow", "when": when}
    document = PolicyDocument.model_validate(
        {"policies": [{"name": "p", "apps": ["*"], "rules": [rule]}]}
    )
    snapshot = compile_snapshot(version=1, apps=APPS, rules=[], policies=document)
    for now, request in batch:
        decision = decide(request, snapshot, now)
        expected = reference_decide(request, apps=APPS, rules=[], policies=document, now=now)
        assert (decision.effect, decision.reasons[0]) == expected, (now, request, decision.trace)
