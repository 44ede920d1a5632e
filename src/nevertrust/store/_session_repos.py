"""SQL repositories for sign-in sessions, hand-off codes and password setup tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from nevertrust.identity.models import HandoffRecord, SessionKind, SessionRecord
from nevertrust.store.tables import handoff_codes, sessions, setup_tokens

__all__ = ["SqlHandoffRepository", "SqlSessionRepository", "SqlSetupTokenRepository"]


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id_hash=row.id_hash,
        user_id=row.user_id,
        kind=SessionKind(row.kind),
        parent_hash=row.parent_hash,
        app_name=row.app_name,
        auth_methods=tuple(m for m in row.auth_methods.split(",") if m),
        auth_time=row.auth_time,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        source_ip=row.source_ip,
        user_agent=row.user_agent,
        last_seen_at=row.last_seen_at,
        device_id=row.device_id,
    )


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, record: SessionRecord) -> None:
        self._conn.execute(
            insert(sessions).values(
                id_hash=record.id_hash,
                user_id=record.user_id,
                kind=str(record.kind),
                parent_hash=record.parent_hash,
                app_name=record.app_name,
                auth_methods=",".join(record.auth_methods),
                auth_time=record.auth_time,
                created_at=record.created_at,
                expires_at=record.expires_at,
                revoked_at=record.revoked_at,
                source_ip=record.source_ip[:64],
                user_agent=record.user_agent[:300],
                last_seen_at=record.last_seen_at,
                device_id=record.device_id,
            )
        )

    def get(self, id_hash: str) -> SessionRecord | None:
        row = self._conn.execute(select(sessions).where(sessions.c.id_hash == id_hash)).first()
        return None if row is None else _session(row)

    def revoke(self, id_hash: str, *, now: datetime) -> int:
        """Revoke a session and every app session handed out from it."""
        result = self._conn.execute(
            update(sessions)
            .where(
                or_(sessions.c.id_hash == id_hash, sessions.c.parent_hash == id_hash),
                sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    def revoke_user(self, user_id: int, *, now: datetime) -> int:
        result = self._conn.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    def touch(self, seen: Sequence[tuple[str, datetime]]) -> None:
        """Record last activity for many sessions at once (batched by the caller)."""
        for id_hash, at in seen:
            self._conn.execute(
                update(sessions)
                .where(
                    sessions.c.id_hash == id_hash,
                    or_(sessions.c.last_seen_at.is_(None), sessions.c.last_seen_at < at),
                )
                .values(last_seen_at=at)
            )

    def purge_expired(self, *, before: datetime) -> int:
        """Delete sessions that ended (expired or revoked) before ``before``."""
        result = self._conn.execute(
            delete(sessions).where(
                or_(sessions.c.expires_at < before, sessions.c.revoked_at < before)
            )
        )
        return int(result.rowcount)

    def list_active(self, *, now: datetime, user_id: int | None = None) -> Sequence[SessionRecord]:
        query = select(sessions).where(
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            sessions.c.kind == str(SessionKind.PORTAL),
        )
        if user_id is not None:
            query = query.where(sessions.c.user_id == user_id)
        return [_session(r) for r in self._conn.execute(query.order_by(sessions.c.created_at))]


class SqlHandoffRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, record: HandoffRecord) -> None:
        self._conn.execute(
            insert(handoff_codes).values(
                code_hash=record.code_hash,
                session_hash=record.session_hash,
                app_name=record.app_name,
                target=record.target,
                state_hash=record.state_hash,
                expires_at=record.expires_at,
            )
        )

    def redeem(self, code_hash: str, *, now: datetime) -> HandoffRecord | None:
        """Mark a code used; only the first caller gets the record (one-time use)."""
        result = self._conn.execute(
            update(handoff_codes)
            .where(
                handoff_codes.c.code_hash == code_hash,
                handoff_codes.c.used_at.is_(None),
                handoff_codes.c.expires_at > now,
            )
            .values(used_at=now)
        )
        if result.rowcount != 1:
            return None
        row = self._conn.execute(
            select(handoff_codes).where(handoff_codes.c.code_hash == code_hash)
        ).one()
        # Used and expired codes have no further purpose; keep the table small.
        self._conn.execute(delete(handoff_codes).where(handoff_codes.c.expires_at <= now))
        return HandoffRecord(
            code_hash=row.code_hash,
            session_hash=row.session_hash,
            app_name=row.app_name,
            target=row.target,
            state_hash=row.state_hash,
            expires_at=row.expires_at,
        )


class SqlSetupTokenRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, *, token_hash: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        # A new link replaces any earlier unused one.
        self._conn.execute(
            update(setup_tokens)
            .where(setup_tokens.c.user_id == user_id, setup_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        self._conn.execute(
            insert(setup_tokens).values(
                token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )

    def peek(self, token_hash: str, *, now: datetime) -> int | None:
        row = self._conn.execute(
            select(setup_tokens.c.user_id).where(
                setup_tokens.c.token_hash == token_hash,
                setup_tokens.c.used_at.is_(None),
                setup_tokens.c.expires_at > now,
            )
        ).first()
        return None if row is None else int(row.user_id)

    def redeem(self, token_hash: str, *, now: datetime) -> int | None:
        user_id = self.peek(token_hash, now=now)
        if user_id is None:
            return None
        self._conn.execute(
            update(setup_tokens).where(setup_tokens.c.token_hash == token_hash).values(used_at=now)
        )
        return user_id
