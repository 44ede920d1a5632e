"""SQL repositories for devices, enrolment tokens, compliance policies and the device CA."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nevertrust.devices.models import (
    CompliancePolicy,
    DeviceRecord,
    IssuedCertificate,
    Ownership,
    Platform,
    State,
    StoredAuthority,
)
from nevertrust.store.tables import (
    device_authority,
    device_policies,
    device_tokens,
    devices,
    users,
    webauthn_credentials,
)

__all__ = [
    "SqlDeviceAuthorityRepository",
    "SqlDevicePolicyRepository",
    "SqlDeviceRepository",
    "SqlDeviceTokenRepository",
]

# pg_advisory_xact_lock key for creating the device CA (ASCII "NTDEVCA").
_CA_LOCK_ID = 0x4E_5444_4556_4341


def _reasons(text_value: str) -> tuple[str, ...]:
    return tuple(r for r in text_value.split(",") if r)


def _device(row: Any) -> DeviceRecord:
    return DeviceRecord(
        device_id=row.id,
        user_id=row.user_id,
        name=row.name,
        platform=None if row.platform is None else Platform(row.platform),
        ownership=Ownership(row.ownership),
        state=State(row.state),
        reasons=_reasons(row.reasons),
        public_key_pem=row.public_key,
        certificate_serial=row.certificate_serial,
        certificate_expires_at=row.certificate_expires_at,
        enrolled_at=row.enrolled_at,
        posture=None if row.posture is None else json.loads(row.posture),
        last_report_at=row.last_report_at,
        last_report_iat=row.last_report_iat,
        last_report_jti=row.last_report_jti,
        last_bind_iat=row.last_bind_iat,
        username=row.username,
        browsers=int(row.browsers),
    )


def _select() -> Any:
    browsers = (
        select(func.count())
        .where(webauthn_credentials.c.device_id == devices.c.id)
        .scalar_subquery()
        .label("browsers")
    )
    return select(devices, users.c.name.label("username"), browsers).join(
        users, users.c.id == devices.c.user_id
    )


class SqlDeviceRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, record: DeviceRecord) -> None:
        self._conn.execute(
            insert(devices).values(
                id=record.device_id,
                user_id=record.user_id,
                name=record.name,
                platform=None if record.platform is None else str(record.platform),
                ownership=str(record.ownership),
                state=str(record.state),
                reasons=",".join(record.reasons),
                public_key=record.public_key_pem,
                certificate_serial=record.certificate_serial,
                certificate_expires_at=record.certificate_expires_at,
                posture=None if record.posture is None else json.dumps(dict(record.posture)),
                last_report_at=record.last_report_at,
                last_report_iat=record.last_report_iat,
                last_report_jti=record.last_report_jti,
                enrolled_at=record.enrolled_at,
            )
        )

    def get(self, device_id: str, *, for_update: bool = False) -> DeviceRecord | None:
        query = _select().where(devices.c.id == device_id)
        if for_update and self._conn.dialect.name == "postgresql":
            # SQLite write transactions hold the database lock already (BEGIN IMMEDIATE).
            query = query.with_for_update(of=devices)
        row = self._conn.execute(query).first()
        return None if row is None else _device(row)

    def list(self, *, user_id: int | None = None) -> Sequence[DeviceRecord]:
        query = _select().order_by(devices.c.enrolled_at.desc(), devices.c.id)
        if user_id is not None:
            query = query.where(devices.c.user_id == user_id)
        return [_device(row) for row in self._conn.execute(query)]

    def accept_report(
        self,
        device_id: str,
        *,
        posture: Mapping[str, Any],
        iat: int,
        jti: str,
        state: State,
        reasons: tuple[str, ...],
        now: datetime,
        certificate: IssuedCertificate | None,
    ) -> bool:
        values: dict[str, Any] = {
            "posture": json.dumps(dict(posture)),
            "platform": str(posture["platform"]),
            "last_report_at": now,
            "last_report_iat": iat,
            "last_report_jti": jti,
            "state": str(state),
            "reasons": ",".join(reasons),
        }
        if certificate is not None:
            values["certificate_serial"] = certificate.serial
            values["certificate_expires_at"] = certificate.not_after
        result = self._conn.execute(
            update(devices)
            .where(
                devices.c.id == device_id,
                or_(devices.c.last_report_iat.is_(None), devices.c.last_report_iat < iat),
            )
            .values(**values)
        )
        return result.rowcount == 1

    def set_state(
        self, device_id: str, state: State, reasons: tuple[str, ...], *, now: datetime
    ) -> None:
        self._conn.execute(
            update(devices)
            .where(devices.c.id == device_id)
            .values(state=str(state), reasons=",".join(reasons))
        )

    def spend_bind_proof(self, device_id: str, iat: int) -> bool:
        result = self._conn.execute(
            update(devices)
            .where(
                devices.c.id == device_id,
                or_(devices.c.last_bind_iat.is_(None), devices.c.last_bind_iat < iat),
            )
            .values(last_bind_iat=iat)
        )
        return result.rowcount == 1

    def delete(self, device_id: str) -> bool:
        result = self._conn.execute(delete(devices).where(devices.c.id == device_id))
        return result.rowcount > 0


class SqlDeviceTokenRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, *, token_hash: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        self._conn.execute(delete(device_tokens).where(device_tokens.c.expires_at <= now))
        self._conn.execute(
            insert(device_tokens).values(
                token_hash=token_hash, user_id=user_id, expires_at=expires_at
            )
        )

    def redeem(self, token_hash: str, *, now: datetime) -> int | None:
        # Looked up by the SHA-256 of what the caller sent, never compared in clear: how long
        # the index lookup takes tells about the hash of the guess, not about any token.
        # DELETE ... RETURNING would do it in one statement; SELECT then a DELETE that must
        # remove exactly that row is as atomic (the DELETE decides) and portable.
        row = self._conn.execute(
            select(device_tokens.c.user_id).where(
                device_tokens.c.token_hash == token_hash, device_tokens.c.expires_at > now
            )
        ).first()
        if row is None:
            return None
        result = self._conn.execute(
            delete(device_tokens).where(
                device_tokens.c.token_hash == token_hash, device_tokens.c.expires_at > now
            )
        )
        return int(row.user_id) if result.rowcount == 1 else None


def _policy(row: Any) -> CompliancePolicy:
    document = json.loads(row.document)
    return CompliancePolicy(
        platform=Platform(row.platform),
        min_os_version=document.get("min_os_version"),
        max_patch_age_days=document.get("max_patch_age_days"),
        require_disk_encryption=bool(document.get("require_disk_encryption", False)),
        require_firewall=bool(document.get("require_firewall", False)),
        require_edr=bool(document.get("require_edr", False)),
        require_screen_lock=bool(document.get("require_screen_lock", False)),
        updated_at=row.updated_at,
    )


class SqlDevicePolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, platform: Platform) -> CompliancePolicy | None:
        row = self._conn.execute(
            select(device_policies).where(device_policies.c.platform == str(platform))
        ).first()
        return None if row is None else _policy(row)

    def list(self) -> Sequence[CompliancePolicy]:
        rows = self._conn.execute(select(device_policies).order_by(device_policies.c.platform))
        return [_policy(row) for row in rows]

    def put(self, policy: CompliancePolicy, *, now: datetime) -> None:
        document = json.dumps(policy.requirements(), sort_keys=True)
        # An upsert: two admins setting a platform's first policy at once must not collide.
        upsert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        statement = upsert(device_policies).values(
            platform=str(policy.platform), document=document, updated_at=now
        )
        self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[device_policies.c.platform],
                set_={"document": document, "updated_at": now},
            )
        )


class SqlDeviceAuthorityRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self) -> None:
        # As for signing keys: SQLite's BEGIN IMMEDIATE already serialises writers.
        if self._conn.dialect.name == "postgresql":
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CA_LOCK_ID})

    def get(self) -> StoredAuthority | None:
        row = self._conn.execute(select(device_authority).where(device_authority.c.id == 1)).first()
        if row is None:
            return None
        return StoredAuthority(row.certificate, bytes(row.private_key_enc))

    def insert(self, authority: StoredAuthority) -> None:
        self._conn.execute(
            insert(device_authority).values(
                id=1,
                certificate=authority.certificate_pem,
                private_key_enc=authority.private_key_enc,
            )
        )
