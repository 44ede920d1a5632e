"""All configuration, read once, by one class.

Values come from ``NEVERTRUST_*`` environment variables (nested areas use ``__``, e.g.
``NEVERTRUST_GATEWAY__ASSERTION_TTL_SECONDS``), from an optional YAML file given to
``nevertrust server --config FILE``, and from defaults. Nothing else in the code base reads
the environment (ruff TID251 enforces it).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nevertrust.errors import ConfigError

__all__ = [
    "AuditSettings",
    "DeviceSettings",
    "GatewaySettings",
    "IdentitySettings",
    "RegulationSettings",
    "Settings",
    "load_settings",
]


class GatewaySettings(BaseModel):
    assertion_ttl_seconds: int = Field(
        default=60, ge=10, le=3600, description="Lifetime of the signed identity assertion."
    )
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long the proxy waits for an upstream."
    )
    session_cache_size: int = Field(
        default=100_000, ge=100, description="Sessions held in the gateway's memory cache."
    )
    upstream_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long the proxy waits to connect to an upstream."
    )
    upstream_pool_size: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Open connections per app upstream; a slow app cannot take the others'.",
    )
    upstream_ca_file: Path | None = Field(
        default=None,
        description="Extra CA bundle (PEM) trusted for https upstreams, besides the system's; "
        "upstream certificates are always verified.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies in front of NeverTrust whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none.",
    )
    forward_auth_clients: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Addresses or networks allowed to call the forward-auth endpoints; their "
        "X-Forwarded-* / X-Original-* headers describe the request to decide.",
    )
    forward_auth_on_main_port: bool = Field(
        default=True,
        description="Also answer forward-auth on the main port. Turn off when proxies use "
        "`forward_auth_port`, so a client reaching the main port through a proxy route "
        "cannot ask questions of its own.",
    )
    forward_auth_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a dedicated lean forward-auth listener on `bind` (0: none; the "
        "endpoints are served on the main port as well).",
    )
    mtls_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the HTTPS listener that asks for device certificates (mTLS) from "
        "CLI, tunnel and API clients (0: none). Serves the same portal, apps and API.",
    )
    signing_key_rotation_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Rotate the assertion signing key when it is this old (0: only by hand).",
    )
    signing_key_overlap_minutes: int = Field(
        default=60,
        ge=1,
        le=7 * 24 * 60,
        description="How long a replaced signing key stays in the JWKS after a rotation.",
    )

    @field_validator("trusted_proxies", "forward_auth_clients")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return [str(ipaddress.ip_network(i.strip(), strict=False)) for i in value]


class IdentitySettings(BaseModel):
    session_lifetime_minutes: int = Field(
        default=12 * 60, ge=5, description="Absolute lifetime of a login session."
    )
    idle_timeout_minutes: int = Field(
        default=60,
        ge=1,
        description="A session unused for this long ends, before its absolute lifetime.",
    )
    handoff_code_ttl_seconds: int = Field(
        default=60, ge=5, le=600, description="Lifetime of the one-time code for app hosts."
    )
    setup_link_ttl_hours: int = Field(
        default=24, ge=1, description="Lifetime of a password setup link."
    )
    min_password_length: int = Field(default=12, ge=8, description="Shortest password accepted.")
    min_password_score: int = Field(
        default=3,
        ge=0,
        le=4,
        description="Lowest zxcvbn guessability score accepted (0 turns the check off).",
    )
    webauthn_rp_id: str = Field(
        default="",
        description="WebAuthn relying party id: the portal host or a parent domain of it; "
        "empty means the portal host. Changing it orphans every registered passkey.",
    )
    webauthn_rp_name: str = Field(
        default="NeverTrust",
        min_length=1,
        max_length=64,
        description="Name browsers show when a passkey is created.",
    )

    @field_validator("webauthn_rp_id")
    @classmethod
    def _rp_id(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", value):
            raise ValueError("must be a DNS name such as example.com (no scheme, port or path)")
        return value


class RegulationSettings(BaseModel):
    """Brute-force regulation of sign-in (docs/brute-force.md); defaults follow Authelia."""

    enabled: bool = Field(default=True, description="Count failed sign-ins and ban on excess.")
    max_retries: int = Field(
        default=3, ge=1, le=1000, description="Failures per user name that cause a ban."
    )
    find_time_seconds: int = Field(
        default=120, ge=1, le=86_400, description="Window in which user-name failures count."
    )
    ban_time_seconds: int = Field(
        default=300, ge=1, le=30 * 86_400, description="How long a user-name ban lasts."
    )
    ip_max_retries: int = Field(
        default=20, ge=1, le=100_000, description="Failures per source address that cause a ban."
    )
    ip_find_time_seconds: int = Field(
        default=300, ge=1, le=86_400, description="Window in which address failures count."
    )
    ip_ban_time_seconds: int = Field(
        default=900, ge=1, le=30 * 86_400, description="How long an address ban lasts."
    )
    key_prefix: str = Field(
        default="",
        max_length=100,
        description="Prefix of the failure-counter keys in Redis; empty: derived from the "
        "master key, so replicas of one deployment share counters and other deployments don't.",
    )


class DeviceSettings(BaseModel):
    """Device trust (docs/devices.md): certificates, enrolment and posture reports."""

    certificate_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="Lifetime of a device certificate."
    )
    enrolment_token_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60, description="Lifetime of a one-time enrolment token."
    )
    report_max_age_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="A signed posture report older than this (or dated ahead by more) is refused.",
    )
    stale_after_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 90,
        description="A device whose last report is older is noncompliant (posture-stale).",
    )
    report_interval_seconds: int = Field(
        default=300, ge=30, le=86_400, description="How often agents are asked to report."
    )


class AuditSettings(BaseModel):
    flush_interval_ms: int = Field(
        default=50, ge=5, le=5000, description="How often queued audit records are written."
    )
    queue_limit: int = Field(
        default=100_000,
        ge=1000,
        description="Queued records before requests are refused (fail closed).",
    )


class Settings(BaseSettings):
    """NeverTrust settings. ``nevertrust config show`` prints every field."""

    model_config = SettingsConfigDict(
        env_prefix="NEVERTRUST_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(
        default=Path(".nevertrust"),
        description="Directory with the SQLite database, secret key and control socket.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at HOME/nevertrust.db.",
    )
    redis_url: str = Field(
        default="",
        description="Redis URL shared by replicas (failure counters, events); empty: none.",
    )
    bind: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on.")
    base_domain: str = Field(
        default="localhost", description="Apps are served at APP.BASE_DOMAIN, the portal at auth."
    )
    public_scheme: Literal["http", "https"] = Field(
        default="http", description="Scheme users reach the platform with."
    )
    public_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port users reach the platform with; defaults to `port`.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="File holding the 32-byte master key; default HOME/secret.key.",
    )
    log_format: Literal["console", "json"] = Field(default="console", description="Log output.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest log level written."
    )
    demo_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the demo whoami upstream (up only)."
    )
    agent_home: Path = Field(
        default=Path("~/.nevertrust-agent"),
        description="Where `nevertrust agent` keeps the device key, certificate and state.",
    )
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    regulation: RegulationSettings = Field(default_factory=RegulationSettings)

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("scheme must be sqlite or postgresql")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("scheme must be redis, rediss or unix")
        return value

    @field_validator("base_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().strip(".")
        if not value or " " in value or "/" in value:
            raise ValueError("must be a DNS name such as localhost or example.com")
        return value

    @model_validator(mode="after")
    def _rp_id_covers_portal(self) -> Settings:
        # WebAuthn §5.1.3: the RP id must be the origin's host or a registrable suffix of
        # it; browsers refuse top-level domains (a single label other than localhost).
        rp_id = self.identity.webauthn_rp_id
        covers = f".{self.portal_host}".endswith(f".{rp_id}")
        if rp_id and (not covers or ("." not in rp_id and rp_id != "localhost")):
            raise ConfigError(
                f"config: bad identity.webauthn_rp_id {rp_id!r}: must be {self.portal_host} "
                "or a parent domain of it (not a top-level domain)"
            )
        return self

    # Derived values; computed, never configured twice.

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'nevertrust.db').resolve()}"

    @property
    def effective_secret_key_file(self) -> Path:
        return self.secret_key_file or self.home / "secret.key"

    @property
    def control_socket(self) -> Path:
        return self.home / "run" / "control.sock"

    def _origin(self, host: str) -> str:
        port = self.public_port or self.port
        default = 443 if self.public_scheme == "https" else 80
        suffix = "" if port == default else f":{port}"
        return f"{self.public_scheme}://{host}{suffix}"

    @property
    def portal_host(self) -> str:
        return f"auth.{self.base_domain}"

    @property
    def portal_url(self) -> str:
        return self._origin(self.portal_host)

    @property
    def webauthn_rp_id(self) -> str:
        return self.identity.webauthn_rp_id or self.portal_host

    def app_host(self, app_name: str) -> str:
        return f"{app_name}.{self.base_domain}"

    def app_url(self, app_name: str) -> str:
        return self._origin(self.app_host(app_name))


def _format_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    if isinstance(value, str):
        # A database or Redis URL may carry a password: never print it.
        value = re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", value)
    message = first["msg"].removeprefix("Value error, ")
    return f"config: bad {key} {value!r}: {message}"


def load_settings(
    *, config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build settings from the environment, an optional YAML file and explicit overrides.

    Precedence, highest first: overrides (CLI flags), environment, file, defaults.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text())
        except OSError as exc:
            raise ConfigError(f"config: cannot read {config_file}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {config_file} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config: {config_file} must hold a mapping of settings")
        file_values = loaded or {}
    try:
        env_only = Settings()
        env_set = {
            name
            for name in Settings.model_fields
            if f"NEVERTRUST_{name.upper()}" in os.environ
            or any(k.startswith(f"NEVERTRUST_{name.upper()}__") for k in os.environ)
        }
        merged: dict[str, Any] = dict(file_values)
        for k in env_set:
            value = getattr(env_only, k)
            if isinstance(value, BaseModel) and isinstance(merged.get(k), dict):
                # A nested area set partly in the file and partly in the environment:
                # the environment wins key by key, not by replacing the whole area.
                value = {**merged[k], **value.model_dump(exclude_unset=True)}
            merged[k] = value
        merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from exc
