"""SQL repositories for login bans (brute-force regulation) and service-account API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from nevertrust.errors import AlreadyExists
from nevertrust.identity.models import ApiKeyRecord, BanRecord
from nevertrust.store.tables import api_keys, login_bans

__all__ = ["SqlApiKeyRepository", "SqlBanRepository"]


def _ban(row: Any) -> BanRecord:
    return BanRecord(
        id=row.id,
        subject=row.subject,
        reason=row.reason,
        failures=row.failures,
        created_at=row.created_at,
        expires_at=row.expires_at,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
    )


class SqlBanRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(
        self, *, subject: str, reason: str, failures: int, now: datetime, expires_at: datetime
    ) -> int:
        result = self._conn.execute(
            insert(login_bans).values(
                subject=subject[:200],
                reason=reason[:200],
                failures=failures,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def active_for(self, subjects: Sequence[str], *, now: datetime) -> Sequence[BanRecord]:
        rows = self._conn.execute(
            select(login_bans).where(
                login_bans.c.subject.in_(list(subjects)),
                login_bans.c.lifted_at.is_(None),
                login_bans.c.expires_at > now,
            )
        )
        return [_ban(r) for r in rows]

    def list_active(self, *, now: datetime) -> Sequence[BanRecord]:
        rows = self._conn.execute(
            select(login_bans)
            .where(login_bans.c.lifted_at.is_(None), login_bans.c.expires_at > now)
            .order_by(login_bans.c.created_at)
        )
        return [_ban(r) for r in rows]

    def latest(self, subjects: Sequence[str]) -> Sequence[BanRecord]:
        newest = (
            select(func.max(login_bans.c.id))
            .where(login_bans.c.subject.in_(list(subjects)))
            .group_by(login_bans.c.subject)
        )
        rows = self._conn.execute(select(login_bans).where(login_bans.c.id.in_(newest)))
        return [_ban(r) for r in rows]

    def lift(self, subject: str, *, by: str, now: datetime) -> int:
        result = self._conn.execute(
            update(login_bans)
            .where(
                login_bans.c.subject == subject,
                login_bans.c.lifted_at.is_(None),
                login_bans.c.expires_at > now,
            )
            .values(lifted_at=now, lifted_by=by[:200])
        )
        return int(result.rowcount)


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        user_id=row.user_id,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        name=row.name,
        scopes=tuple(s for s in row.scopes.split(" ") if s),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlApiKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(
        self,
        *,
        user_id: int,
        prefix: str,
        secret_hash: str,
        name: str,
        scopes: Sequence[str],
        created_by: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> int:
        try:
            result = self._conn.execute(
                insert(api_keys).values(
                    user_id=user_id,
                    prefix=prefix,
                    secret_hash=secret_hash,
                    name=name[:100],
                    scopes=" ".join(scopes),
                    created_by=created_by[:200],
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        except IntegrityError as exc:  # a 48-bit random prefix collided: vanishingly rare
            raise AlreadyExists("API key prefix collision; try again") from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def get_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
        return None if row is None else _key(row)

    def list_for_user(self, user_id: int | None = None) -> Sequence[ApiKeyRecord]:
        query = select(api_keys).order_by(api_keys.c.user_id, api_keys.c.created_at)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        return [_key(r) for r in self._conn.execute(query)]

    def touch(self, used: Sequence[tuple[int, datetime]]) -> None:
        for key_id, at in used:
            self._conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at)
            )

    def revoke(self, key_id: int, *, now: datetime) -> bool:
        result = self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    def set_expiry(self, key_id: int, expires_at: datetime) -> None:
        self._conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(expires_at=expires_at)
        )
