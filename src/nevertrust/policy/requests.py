"""A request described by hand (what-if, policy tests), turned into an AccessRequest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nevertrust.domain import AccessRequest, DeviceState, Principal, RiskLevel
from nevertrust.pdp._durations import parse_duration

__all__ = ["DeviceSpec", "RequestSpec", "decision_json"]


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = "what-if-device"
    compliant: bool = False
    managed: bool = False
    platform: Literal["linux", "macos", "windows", "ios", "android", "chromeos", ""] = ""
    posture: dict[str, str | int | float | bool] = Field(default_factory=dict)


class RequestSpec(BaseModel):
    """Everything a decision can depend on. Omitted attributes are unknown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1, max_length=64)
    groups: list[str] | None = Field(
        default=None, description="The user's groups; default: their current groups."
    )
    roles: list[str] = Field(default_factory=list)
    app: str = Field(min_length=1, max_length=63)
    method: str = "GET"
    path: str = "/"
    source_ip: str = ""
    auth_methods: list[str] = Field(default_factory=lambda: ["pwd"])
    auth_age: str | int | None = Field(
        default="1m", description="How long ago the user signed in, e.g. 5m; null: unknown."
    )
    device: DeviceSpec | None = None
    country: str | None = None
    risk: RiskLevel | None = None
    at: datetime | None = Field(default=None, description="When; default: now.")
    enabled: bool = True

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value

    @field_validator("auth_age")
    @classmethod
    def _age(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str):
            parse_duration(value)
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-25T10:00:00+01:00 or ...Z")
        return value

    def when(self, now: datetime) -> datetime:
        return self.at or now

    def to_request(
        self, *, now: datetime, user_id: int = 0, current_groups: frozenset[str] | None = None
    ) -> AccessRequest:
        at = self.when(now)
        groups = (
            frozenset(self.groups) if self.groups is not None else current_groups or frozenset()
        )
        auth_time = None
        if self.auth_age is not None:
            seconds = (
                self.auth_age if isinstance(self.auth_age, int) else parse_duration(self.auth_age)
            )
            auth_time = at - timedelta(seconds=seconds)
        device = None
        if self.device is not None:
            device = DeviceState(
                device_id=self.device.id,
                compliant=self.device.compliant,
                managed=self.device.managed,
                platform=self.device.platform,
                posture=dict(self.device.posture),
            )
        return AccessRequest(
            principal=Principal(
                user_id=user_id,
                name=self.user,
                groups=groups,
                enabled=self.enabled,
                roles=frozenset(self.roles),
            ),
            app=self.app,
            method=self.method.upper(),
            path=self.path,
            source_ip=self.source_ip,
            auth_methods=frozenset(self.auth_methods),
            auth_time=auth_time,
            device=device,
            country=self.country,
            risk=self.risk,
        )


def decision_json(decision: Any) -> dict[str, Any]:
    """A Decision as JSON for the API and ``--json`` output."""
    out: dict[str, Any] = {
        "effect": str(decision.effect),
        "reasons": [str(r) for r in decision.reasons],
        "explanations": list(decision.explanations),
        "rule": decision.rule_id,
        "detail": decision.detail,
        "trace": [
            {
                "rule": t.rule_id,
                "effect": t.effect,
                "matched": t.matched,
                "failed_condition": t.failed_condition,
                "detail": t.detail,
            }
            for t in decision.trace
        ],
    }
    if decision.step_up is not None:
        out["step_up"] = {
            "methods": sorted(decision.step_up.methods),
            "max_age_seconds": decision.step_up.max_age_seconds,
        }
    if decision.shadow is not None:
        out["report_only"] = decision_json(decision.shadow)
    return out
