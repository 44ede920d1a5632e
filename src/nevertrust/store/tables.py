"""SQLAlchemy Core tables. The schema itself is owned by the Alembic migrations beside this.

Rules that matter for security:
- secrets never stored in clear: session ids, one-time codes and setup tokens are stored as
  SHA-256 hashes (they are 256-bit random, so a plain hash cannot be brute-forced), passwords
  as argon2id, signing keys encrypted with the master key.
- ``change_log`` rows are written in the same transaction as the change they announce, so
  a watcher never sees an event before its data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

__all__ = [
    "access_rules",
    "api_keys",
    "apps",
    "auth_challenges",
    "audit_head",
    "audit_log",
    "change_log",
    "config_versions",
    "device_authority",
    "device_policies",
    "device_tokens",
    "devices",
    "group_members",
    "groups",
    "handoff_codes",
    "login_bans",
    "metadata",
    "policy_versions",
    "recovery_codes",
    "sessions",
    "setup_tokens",
    "signing_keys",
    "totp_credentials",
    "users",
    "webauthn_credentials",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL does."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - driver contract, not input
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, default=""),
    Column("email", String(320), nullable=False, default=""),
    Column("password_hash", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # "person" or "service" (a machine identity owned by a person).
    Column("kind", String(16), nullable=False, default="person", server_default="person"),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("description", String(500), nullable=False, default="", server_default=""),
    Column("last_login_at", UTCDateTime, nullable=True),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", String(500), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    # Members must enrol a second factor before they can reach any app.
    Column("mfa_required", Boolean, nullable=False, default=False, server_default="0"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
    Index("ix_group_members_user_id", "user_id"),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("upstream", String(2000), nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("labels", Text, nullable=False, default="{}"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

access_rules = Table(
    "access_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", Integer, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("origin", String(64), nullable=False, default="cli"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("require_compliant_device", Boolean, nullable=False, default=False, server_default="0"),
    Index("uq_access_rules_app_group", "app_id", "group_id", unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("parent_hash", String(64), nullable=True),
    Column("app_name", String(63), nullable=True),
    Column("auth_methods", String(200), nullable=False, default="pwd"),
    Column("auth_time", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("source_ip", String(64), nullable=False, default=""),
    Column("user_agent", String(300), nullable=False, default=""),
    # Last activity seen (written in batches, not per request) for the idle timeout.
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("device_id", String(40), nullable=True),  # opened with that device's passkey
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_parent_hash", "parent_hash"),
)

handoff_codes = Table(
    "handoff_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("session_hash", String(64), nullable=False),
    Column("app_name", String(63), nullable=False),
    Column("target", String(4000), nullable=False),
    Column("state_hash", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

setup_tokens = Table(
    "setup_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_key_enc", LargeBinary, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),
)

config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("document", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source", String(500), nullable=False, default=""),
    Column("applied_by", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False, default=""),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("document", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source", String(500), nullable=False, default=""),
    Column("applied_by", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False, default=""),
)

totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret_enc", LargeBinary, nullable=False),  # AES-GCM under the master key
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),  # NULL until a first code is checked
    Column("last_used_step", BigInteger, nullable=True),  # replay guard: newest step accepted
)

webauthn_credentials = Table(
    "webauthn_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", String(1400), nullable=False, unique=True),  # base64url
    Column("public_key", LargeBinary, nullable=False),  # COSE key
    Column("sign_count", BigInteger, nullable=False, default=0),
    Column("transports", String(200), nullable=False, default=""),
    Column("name", String(100), nullable=False, default=""),
    Column("aaguid", String(64), nullable=False, default=""),
    Column("backed_up", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("device_id", String(40), nullable=True),  # a device's platform credential
    Index("ix_webauthn_credentials_user_id", "user_id"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index("ix_recovery_codes_user_id", "user_id"),
)

auth_challenges = Table(
    "auth_challenges",
    metadata,
    # One-time server-side state of a WebAuthn ceremony, keyed by a hashed browser handle.
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("purpose", String(32), nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("device_id", String(40), nullable=True),  # a bind ceremony's verified device
)

login_bans = Table(
    "login_bans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=False),  # "user:NAME" or "ip:ADDRESS"
    Column("reason", String(200), nullable=False, default=""),
    Column("failures", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime, nullable=True),
    Column("lifted_by", String(200), nullable=True),
    Index("ix_login_bans_subject", "subject"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),  # shown in lists and logs
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the 256-bit secret
    Column("name", String(100), nullable=False, default=""),
    Column("scopes", String(500), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_api_keys_user_id", "user_id"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(40), primary_key=True),  # dev_<base32>
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("platform", String(16), nullable=True),  # NULL until a posture says
    Column("ownership", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reasons", String(300), nullable=False, default=""),  # comma-separated codes
    Column("public_key", Text, nullable=False),  # PEM SubjectPublicKeyInfo, EC P-256
    Column("certificate_serial", String(40), nullable=False),  # the only accepted one
    Column("certificate_expires_at", UTCDateTime, nullable=False),
    Column("posture", Text, nullable=True),  # JSON of the last accepted posture
    Column("last_report_at", UTCDateTime, nullable=True),
    Column("last_report_iat", BigInteger, nullable=True),  # replay guard: newest iat
    Column("last_report_jti", String(200), nullable=True),
    Column("last_bind_iat", BigInteger, nullable=True),  # replay guard: newest bind proof
    Column("enrolled_at", UTCDateTime, nullable=False),
    Index("ix_devices_user_id", "user_id"),
)

device_tokens = Table(
    "device_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of a 256-bit token
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the row is deleted when redeemed
)

device_policies = Table(
    "device_policies",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("document", Text, nullable=False),  # JSON of the requirements
    Column("updated_at", UTCDateTime, nullable=False),  # who: in the audit log
)

device_authority = Table(
    "device_authority",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one CA
    Column("certificate", Text, nullable=False),
    Column("private_key_enc", LargeBinary, nullable=False),  # AES-GCM under the master key
)

change_log = Table(
    "change_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("topic", String(32), nullable=False),
    Column("key", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("ts", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(500), nullable=False, default=""),
    Column("source", String(200), nullable=False, default=""),
    Column("outcome", String(32), nullable=False),
    Column("reason", String(200), nullable=False, default=""),
    Column("details", Text, nullable=False, default="{}"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_ts", "ts"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
