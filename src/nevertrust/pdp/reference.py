"""A deliberately naive reference interpreter of the policy language.

It exists so that the compiled engine (``snapshot`` + ``engine`` + ``conditions``) can be
checked against it in differential tests; nothing in production calls it. It reads the
parsed ``PolicyDocument`` and the ``apps allow`` rules as they are, scans every rule on
every request, and re-implements each condition from the semantics documented in
``language.py`` without sharing any code with the compiled conditions. Slow and plain on
purpose: when the two disagree, this one should be the easier to read.

Conditions are checked in the order the language declares them (users, groups, roles,
auth_methods, mfa_max_age, device.*, source.*, time, risk_max, http.*); that order
decides which condition a near-miss names first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nevertrust.domain import AccessRequest, AccessRule, App, Effect, Reason
from nevertrust.pdp.language import Policy, PolicyDocument, StepUpSpec, When

__all__ = ["reference_decide"]

_SECOND_FACTORS = {"otp", "webauthn", "hwk", "mfa"}
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RISK_ORDER = ["low", "medium", "high", "critical"]
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class _Rule:
    effect: str
    when: When | None  # None for an `apps allow` rule, which only needs ``group``
    group: str = ""
    step_up: StepUpSpec = field(default_factory=StepUpSpec)  # defaults when not written


def _seconds(value: str | int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    return int(text[:-1].strip()) * _SECONDS_PER_UNIT[text[-1]]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_any(address: ipaddress.IPv4Address | ipaddress.IPv6Address, ranges: list[str]) -> bool:
    for text in ranges:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == address.version and address in network:
            return True
    return False


def _day_set(items: list[str]) -> set[int]:
    days: set[int] = set()
    for item in items:
        if "-" in item:
            first, last = item.split("-")
        else:
            first = last = item
        day = _WEEKDAYS.index(first)
        days.add(day)
        while day != _WEEKDAYS.index(last):
            day = (day + 1) % 7
            days.add(day)
    return days


def _minute_of_day(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:5])


def _in_hours(hours: str, minute: int) -> bool:
    start, end = _minute_of_day(hours[:5]), _minute_of_day(hours[6:])
    if start < end:
        return start <= minute < end
    # Wraps past midnight: from start to the end of the day, and from midnight to end.
    return minute >= start or minute < end


def _glob(pattern: str, text: str) -> bool:
    """'*' matches any run of characters (slashes included), '?' exactly one."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(_glob(pattern[1:], text[i:]) for i in range(len(text) + 1))
    if not text:
        return False
    if pattern[0] == "?" or pattern[0] == text[0]:
        return _glob(pattern[1:], text[1:])
    return False


def _checks(when: When, request: AccessRequest, now: datetime) -> list[tuple[str, bool]]:
    """(condition name, holds) for every condition present, in declaration order."""
    who = request.principal
    device = request.device
    checks: list[tuple[str, bool]] = []
    if when.users is not None:
        checks.append(("users", who.name in when.users))
    if when.groups is not None:
        checks.append(("groups", any(g in who.groups for g in when.groups)))
    if when.roles is not None:
        checks.append(("roles", any(r in who.roles for r in when.roles)))
    if when.auth_methods is not None:
        checks.append(("auth_methods", any(m in request.auth_methods for m in when.auth_methods)))
    if when.mfa_max_age is not None:
        used = any(m in _SECOND_FACTORS for m in request.auth_methods)
        recent = request.auth_time is not None and now - request.auth_time <= timedelta(
            seconds=_seconds(when.mfa_max_age)
        )
        checks.append(("mfa_max_age", used and recent))
    if when.device is not None:
        d = when.device
        if d.compliant is not None:
            checks.append(
                ("device.compliant", device is not None and device.compliant == d.compliant)
            )
        if d.managed is not None:
            checks.append(("device.managed", device is not None and device.managed == d.managed))
        if d.platform is not None:
            checks.append(("device.platform", device is not None and device.platform in d.platform))
        if d.posture is not None:
            # Every listed field must be present and equal (an empty mapping asks nothing).
            ok = device is not None and all(
                key in device.posture and device.posture[key] == value
                for key, value in d.posture.items()
            )
            checks.append(("device.posture", ok))
    if when.source is not None:
        s = when.source
        address = _address(request.source_ip)
        if s.cidr is not None:
            checks.append(("source.cidr", address is not None and _in_any(address, s.cidr)))
        if s.not_cidr is not None:
            outside = address is not None and not _in_any(address, s.not_cidr)
            checks.append(("source.not_cidr", outside))
        if s.country is not None:
            known = request.country is not None
            checks.append(("source.country", known and request.country in s.country))
    if when.time is not None:
        t = when.time
        local = now.astimezone(ZoneInfo(t.timezone))
        ok = True
        if t.days is not None:  # a list matches any of its items: [] matches no day
            ok = ok and local.weekday() in _day_set(t.days)
        if t.hours is not None:
            ok = ok and _in_hours(t.hours, local.hour * 60 + local.minute)
        checks.append(("time", ok))
    if when.risk_max is not None:
        within = request.risk is not None and _RISK_ORDER.index(
            request.risk.value
        ) <= _RISK_ORDER.index(when.risk_max.value)
        checks.append(("risk_max", within))
    if when.http is not None:
        if when.http.methods is not None:
            checks.append(("http.methods", request.method in when.http.methods))
        if when.http.paths is not None:
            checks.append(("http.paths", any(_glob(p, request.path) for p in when.http.paths)))
    return checks


def _first_failure(rule: _Rule, request: AccessRequest, now: datetime) -> str | None:
    """The name of the first condition that does not hold, or None when the rule matches."""
    if rule.when is None:
        return None if rule.group in request.principal.groups else "groups"
    for name, holds in _checks(rule.when, request, now):
        if not holds:
            return name
    return None


def _targets(policy: Policy, app: App) -> bool:
    # A policy applies to the apps it names, '*' meaning every app, and also (union) to
    # the apps carrying every one of its labels.
    named = policy.apps is not None and ("*" in policy.apps or app.name in policy.apps)
    labelled = policy.app_labels is not None and all(
        key in app.labels and app.labels[key] == value for key, value in policy.app_labels.items()
    )
    return named or labelled


def reference_decide(
    request: AccessRequest,
    *,
    apps: Iterable[App],
    rules: Iterable[AccessRule],
    policies: PolicyDocument | None,
    now: datetime,
    report_only: bool = False,
) -> tuple[Effect, Reason]:
    """Effect and first reason for ``request`` at ``now``.

    With ``report_only``, report-only policies count as if enforced: the outcome the
    compiled engine reports as ``Decision.shadow`` when it differs from the enforced one.
    """
    if not request.principal.enabled:
        return Effect.DENY, Reason.USER_DISABLED
    app = None
    for candidate in apps:
        if candidate.name == request.app:
            app = candidate
    if app is None:
        return Effect.DENY, Reason.UNKNOWN_APP

    applicable: list[_Rule] = []
    for access_rule in rules:
        if access_rule.app == app.name:
            applicable.append(_Rule("allow", None, group=access_rule.group))
            if access_rule.require_compliant_device:
                # `apps allow --require-compliant-device`: the group also needs the device.
                applicable.append(_Rule("require-device", None, group=access_rule.group))
    modes = {"enforce", "report-only"} if report_only else {"enforce"}
    for policy in policies.policies if policies is not None else []:
        if policy.mode in modes and _targets(policy, app):
            for written in policy.rules:
                spec = written.step_up if written.step_up is not None else StepUpSpec()
                applicable.append(_Rule(written.effect, written.when, step_up=spec))

    def matching(effect: str) -> list[_Rule]:
        return [
            r for r in applicable if r.effect == effect and _first_failure(r, request, now) is None
        ]

    if matching("deny"):
        return Effect.DENY, Reason.DENIED_BY_RULE
    allow_rules = [r for r in applicable if r.effect == "allow"]
    if not allow_rules:
        return Effect.DENY, Reason.NO_RULE_FOR_APP
    granted = matching("allow")
    if not granted:
        failures = [_first_failure(r, request, now) for r in allow_rules]
        if all(failure == "groups" for failure in failures):
            return Effect.DENY, Reason.NOT_IN_ALLOWED_GROUP
        return Effect.DENY, Reason.NO_MATCHING_RULE
    if matching("require-device"):
        if request.device is None:
            return Effect.REQUIRE_DEVICE, Reason.DEVICE_UNKNOWN
        if not request.device.compliant:
            return Effect.REQUIRE_DEVICE, Reason.DEVICE_NONCOMPLIANT
    for rule in matching("step-up"):
        used = any(m in request.auth_methods for m in rule.step_up.methods)
        fresh = (
            used
            and request.auth_time is not None
            and now - request.auth_time <= timedelta(seconds=_seconds(rule.step_up.max_age))
        )
        if not fresh:
            return Effect.STEP_UP, Reason.MFA_STALE if used else Reason.MFA_REQUIRED
    if granted[0].when is None:
        return Effect.ALLOW, Reason.ALLOWED_BY_GROUP
    return Effect.ALLOW, Reason.ALLOWED_BY_RULE
