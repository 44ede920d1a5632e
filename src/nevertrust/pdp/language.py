"""The policy language: a YAML document of policies, each a list of rules.

Reference and examples: docs/policy.md. This module only describes and validates the
shape; ``compiler`` turns a valid document into fast predicates, ``reference`` evaluates
it naively for differential tests.

Semantics in one paragraph: a rule applies to a request when every condition under its
``when`` holds (AND); a list in a condition matches any of its items (OR); a condition on
an attribute the request lacks is false. Among the rules of enforced policies that apply
to the request's app: any matching ``deny`` denies (deny overrides); otherwise without a
matching ``allow`` the request is denied (default deny); otherwise an unmet matching
``require-device`` asks for a compliant device, an unmet matching ``step-up`` asks for a
stronger or fresher sign-in, and else the request is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nevertrust.domain.models import RiskLevel
from nevertrust.domain.names import NAME_PATTERN
from nevertrust.pdp._durations import parse_duration

__all__ = [
    "DeviceCondition",
    "HttpCondition",
    "Policy",
    "PolicyDocument",
    "Rule",
    "RuleEffect",
    "SourceCondition",
    "StepUpSpec",
    "TimeCondition",
    "When",
]

RuleEffect = Literal["allow", "deny", "step-up", "require-device"]
PolicyMode = Literal["enforce", "report-only", "disabled"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
_AUTH_METHODS = frozenset({"pwd", "otp", "webauthn", "hwk", "mfa", "recovery", "sso", "mtls"})
_COUNTRY = re.compile(r"^[A-Z]{2}$")

NameList = Annotated[list[str], Field(min_length=1, max_length=10_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _names(kind: str, values: list[str]) -> list[str]:
    for value in values:
        if not NAME_PATTERN.fullmatch(value) and not (kind == "user" and value):
            raise ValueError(f"{kind} name {value!r} is invalid")
    return values


def _duration(value: str | int) -> int:
    return value if isinstance(value, int) else parse_duration(value)


class DeviceCondition(_Strict):
    """Conditions on the device; every one is false when the device is unknown."""

    compliant: bool | None = None
    managed: bool | None = None
    platform: list[Literal["linux", "macos", "windows", "ios", "android", "chromeos"]] | None = None
    posture: dict[str, str | int | float | bool] | None = Field(
        default=None, description="Posture fields that must equal the given values."
    )


class SourceCondition(_Strict):
    cidr: list[str] | None = Field(default=None, description="Source address in any of these.")
    not_cidr: list[str] | None = Field(default=None, description="Source address in none of these.")
    country: list[str] | None = Field(default=None, description="ISO 3166-1 alpha-2 codes.")

    @field_validator("cidr", "not_cidr")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP network like 10.0.0.0/8") from exc
        return value

    @field_validator("country")
    @classmethod
    def _countries(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not _COUNTRY.fullmatch(item):
                raise ValueError(f"{item!r} is not a two-letter upper-case country code")
        return value


class TimeCondition(_Strict):
    days: list[str] | None = Field(default=None, description="mon..sun, or ranges like mon-fri.")
    hours: str | None = Field(default=None, description="HH:MM-HH:MM; may wrap past midnight.")
    timezone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Berlin.")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            parts = item.split("-")
            # At most one '-': 'mon-tue-wed' is no range (and it used to fail compilation).
            if len(parts) > 2 or any(part not in _DAYS for part in parts):
                raise ValueError(f"{item!r}: expected mon..sun or a range like mon-fri")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not _HOURS.fullmatch(value):
            raise ValueError(f"{value!r}: expected HH:MM-HH:MM, e.g. 08:00-18:00")
        if value is not None and value.split("-")[0] == value.split("-")[1]:
            raise ValueError(f"{value!r}: start and end are equal; leave 'hours' out for all day")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class HttpCondition(_Strict):
    methods: list[str] | None = None
    paths: list[str] | None = Field(
        default=None, description="Path patterns: '*' matches any characters, '?' one."
    )

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in _METHODS:
                raise ValueError(f"{item!r} is not an HTTP method in upper case")
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not item.startswith("/"):
                raise ValueError(f"path pattern {item!r} must start with '/'")
        return value


class When(_Strict):
    """All present conditions must hold (AND); lists match any item (OR)."""

    users: NameList | None = None
    groups: NameList | None = None
    roles: NameList | None = None
    auth_methods: list[str] | None = Field(
        default=None, description="Any of: pwd, otp, webauthn, hwk, mfa, recovery, sso, mtls."
    )
    mfa_max_age: str | int | None = Field(
        default=None, description="A second factor used within this long, e.g. 15m."
    )
    device: DeviceCondition | None = None
    source: SourceCondition | None = None
    time: TimeCondition | None = None
    risk_max: RiskLevel | None = Field(default=None, description="Risk at most this level.")
    http: HttpCondition | None = None

    @field_validator("users")
    @classmethod
    def _users(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _names("user", value)

    @field_validator("groups", "roles")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _names("group", value)

    @field_validator("auth_methods")
    @classmethod
    def _auth(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in _AUTH_METHODS:
                raise ValueError(f"{item!r} is not one of {sorted(_AUTH_METHODS)}")
        return value

    @field_validator("mfa_max_age")
    @classmethod
    def _age(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            _duration(value)
        return value


class StepUpSpec(_Strict):
    methods: list[str] = Field(default_factory=lambda: ["otp", "webauthn"], min_length=1)
    max_age: str | int = Field(default="15m", description="How recent the strong sign-in must be.")

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in _AUTH_METHODS:
                raise ValueError(f"{item!r} is not one of {sorted(_AUTH_METHODS)}")
        return value

    @field_validator("max_age")
    @classmethod
    def _age(cls, value: str | int) -> str | int:
        _duration(value)
        return value

    @property
    def max_age_seconds(self) -> int:
        return _duration(self.max_age)


class Rule(_Strict):
    name: str = Field(pattern=NAME_PATTERN.pattern)
    effect: RuleEffect
    description: str = Field(default="", max_length=500)
    when: When = Field(default_factory=When)
    step_up: StepUpSpec | None = None

    @model_validator(mode="after")
    def _step_up_only_for_step_up(self) -> Rule:
        if self.step_up is not None and self.effect != "step-up":
            raise ValueError("step_up is only allowed on rules with effect: step-up")
        return self


class Policy(_Strict):
    name: str = Field(pattern=NAME_PATTERN.pattern)
    description: str = Field(default="", max_length=500)
    mode: PolicyMode = "enforce"
    apps: list[str] | None = Field(default=None, description="App names, or ['*'] for every app.")
    # At least one label: an empty mapping would read as 'every app' (all of no labels),
    # too easy to write by accident next to an allow rule.
    app_labels: dict[str, str] | None = Field(
        default=None, min_length=1, description="Apply to apps carrying all of these labels."
    )
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _targets(self) -> Policy:
        if self.apps is None and self.app_labels is None:
            raise ValueError("a policy needs 'apps' (names or ['*']) or 'app_labels'")
        for app in self.apps or []:
            if app != "*" and not NAME_PATTERN.fullmatch(app):
                raise ValueError(f"app name {app!r} is invalid")
        names = [rule.name for rule in self.rules]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"rule {name!r} appears twice in policy {self.name!r}")
        return self


class PolicyDocument(_Strict):
    version: Literal[1] = 1
    policies: list[Policy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> PolicyDocument:
        seen: set[str] = set()
        for policy in self.policies:
            if policy.name in seen:
                raise ValueError(f"policy {policy.name!r} appears twice")
            seen.add(policy.name)
        return self
