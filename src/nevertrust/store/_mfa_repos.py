"""SQL repositories for second factors: TOTP, WebAuthn credentials, recovery codes, and
the one-time server-side state of WebAuthn ceremonies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from nevertrust.errors import AlreadyExists
from nevertrust.identity.models import ChallengeRecord, TotpRecord, WebAuthnCredentialRecord
from nevertrust.store.tables import (
    auth_challenges,
    recovery_codes,
    totp_credentials,
    webauthn_credentials,
)

__all__ = [
    "SqlChallengeRepository",
    "SqlRecoveryCodeRepository",
    "SqlTotpRepository",
    "SqlWebAuthnRepository",
]


class SqlTotpRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, user_id: int) -> TotpRecord | None:
        row = self._conn.execute(
            select(totp_credentials).where(totp_credentials.c.user_id == user_id)
        ).first()
        if row is None:
            return None
        return TotpRecord(
            user_id=row.user_id,
            secret_enc=bytes(row.secret_enc),
            created_at=row.created_at,
            confirmed_at=row.confirmed_at,
            last_used_step=row.last_used_step,
        )

    def put(self, user_id: int, secret_enc: bytes, *, now: datetime) -> None:
        """A new, unconfirmed secret; replaces any earlier one (re-enrolment)."""
        self._conn.execute(delete(totp_credentials).where(totp_credentials.c.user_id == user_id))
        self._conn.execute(
            insert(totp_credentials).values(
                user_id=user_id, secret_enc=secret_enc, created_at=now, confirmed_at=None
            )
        )

    def confirm(self, user_id: int, *, step: int, now: datetime) -> None:
        self._conn.execute(
            update(totp_credentials)
            .where(totp_credentials.c.user_id == user_id)
            .values(confirmed_at=now, last_used_step=step)
        )

    def use_step(self, user_id: int, step: int) -> bool:
        """Claim a time step; False if it (or a later one) was used already: no replay.

        A conditional UPDATE, so two replicas racing with the same code cannot both win.
        """
        result = self._conn.execute(
            update(totp_credentials)
            .where(
                totp_credentials.c.user_id == user_id,
                or_(
                    totp_credentials.c.last_used_step.is_(None),
                    totp_credentials.c.last_used_step < step,
                ),
            )
            .values(last_used_step=step)
        )
        return result.rowcount == 1

    def delete(self, user_id: int) -> bool:
        result = self._conn.execute(
            delete(totp_credentials).where(totp_credentials.c.user_id == user_id)
        )
        return result.rowcount > 0

    def confirmed_user_ids(self) -> set[int]:
        rows = self._conn.execute(
            select(totp_credentials.c.user_id).where(totp_credentials.c.confirmed_at.is_not(None))
        )
        return {int(r[0]) for r in rows}


def _credential(row: Any) -> WebAuthnCredentialRecord:
    return WebAuthnCredentialRecord(
        id=row.id,
        user_id=row.user_id,
        credential_id=row.credential_id,
        public_key=bytes(row.public_key),
        sign_count=int(row.sign_count),
        transports=tuple(t for t in row.transports.split(",") if t),
        name=row.name,
        aaguid=row.aaguid,
        backed_up=bool(row.backed_up),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        device_id=row.device_id,
    )


class SqlWebAuthnRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(
        self,
        *,
        user_id: int,
        credential_id: str,
        public_key: bytes,
        sign_count: int,
        transports: Sequence[str],
        name: str,
        aaguid: str,
        backed_up: bool,
        now: datetime,
        device_id: str | None = None,
    ) -> int:
        try:
            result = self._conn.execute(
                insert(webauthn_credentials).values(
                    user_id=user_id,
                    credential_id=credential_id,
                    public_key=public_key,
                    sign_count=sign_count,
                    transports=",".join(transports)[:200],
                    name=name[:100],
                    aaguid=aaguid[:64],
                    backed_up=backed_up,
                    created_at=now,
                    device_id=device_id,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists("this authenticator is already registered") from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def list_for_user(self, user_id: int) -> Sequence[WebAuthnCredentialRecord]:
        rows = self._conn.execute(
            select(webauthn_credentials)
            .where(webauthn_credentials.c.user_id == user_id)
            .order_by(webauthn_credentials.c.id)
        )
        return [_credential(r) for r in rows]

    def get_by_credential_id(self, credential_id: str) -> WebAuthnCredentialRecord | None:
        row = self._conn.execute(
            select(webauthn_credentials).where(
                webauthn_credentials.c.credential_id == credential_id
            )
        ).first()
        return None if row is None else _credential(row)

    def record_use(self, credential_pk: int, *, sign_count: int, now: datetime) -> None:
        self._conn.execute(
            update(webauthn_credentials)
            .where(webauthn_credentials.c.id == credential_pk)
            .values(sign_count=sign_count, last_used_at=now)
        )

    def rename(self, user_id: int, credential_pk: int, name: str) -> bool:
        result = self._conn.execute(
            update(webauthn_credentials)
            .where(
                webauthn_credentials.c.id == credential_pk,
                webauthn_credentials.c.user_id == user_id,
            )
            .values(name=name[:100])
        )
        return result.rowcount > 0

    def delete(self, user_id: int, credential_pk: int) -> bool:
        result = self._conn.execute(
            delete(webauthn_credentials).where(
                webauthn_credentials.c.id == credential_pk,
                webauthn_credentials.c.user_id == user_id,
            )
        )
        return result.rowcount > 0

    def delete_all(self, user_id: int) -> int:
        result = self._conn.execute(
            delete(webauthn_credentials).where(webauthn_credentials.c.user_id == user_id)
        )
        return int(result.rowcount)

    def user_ids(self) -> set[int]:
        rows = self._conn.execute(select(webauthn_credentials.c.user_id).distinct())
        return {int(r[0]) for r in rows}


class SqlRecoveryCodeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def replace(self, user_id: int, code_hashes: Sequence[str], *, now: datetime) -> None:
        """A new set of codes; every earlier code stops working."""
        self._conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        if code_hashes:
            self._conn.execute(
                insert(recovery_codes),
                [{"user_id": user_id, "code_hash": h, "created_at": now} for h in code_hashes],
            )

    def redeem(self, user_id: int, code_hash: str, *, now: datetime) -> bool:
        result = self._conn.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return result.rowcount == 1

    def remaining(self, user_id: int) -> int:
        rows = self._conn.execute(
            select(recovery_codes.c.id).where(
                recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
            )
        ).all()
        return len(rows)

    def delete_all(self, user_id: int) -> int:
        result = self._conn.execute(
            delete(recovery_codes).where(recovery_codes.c.user_id == user_id)
        )
        return int(result.rowcount)


class SqlChallengeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, record: ChallengeRecord) -> None:
        # Expired ceremonies have no further purpose; keep the table small.
        self._conn.execute(
            delete(auth_challenges).where(auth_challenges.c.expires_at <= record.created_at)
        )
        self._conn.execute(
            insert(auth_challenges).values(
                id_hash=record.id_hash,
                user_id=record.user_id,
                purpose=record.purpose,
                challenge=record.challenge,
                created_at=record.created_at,
                expires_at=record.expires_at,
                device_id=record.device_id,
            )
        )

    def take(self, id_hash: str, *, purpose: str, now: datetime) -> ChallengeRecord | None:
        """Return and delete a live challenge: each one is good for a single attempt."""
        row = self._conn.execute(
            select(auth_challenges).where(
                auth_challenges.c.id_hash == id_hash, auth_challenges.c.purpose == purpose
            )
        ).first()
        if row is None:
            return None
        deleted = self._conn.execute(
            delete(auth_challenges).where(auth_challenges.c.id_hash == id_hash)
        )
        if deleted.rowcount != 1 or row.expires_at <= now:
            return None
        return ChallengeRecord(
            id_hash=row.id_hash,
            user_id=row.user_id,
            purpose=row.purpose,
            challenge=bytes(row.challenge),
            created_at=row.created_at,
            expires_at=row.expires_at,
            device_id=row.device_id,
        )
