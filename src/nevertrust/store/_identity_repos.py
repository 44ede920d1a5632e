"""SQL repositories for users, groups, sessions, hand-off codes and setup tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from nevertrust.errors import AlreadyExists
from nevertrust.identity.models import (
    GroupRecord,
    HandoffRecord,
    SessionKind,
    SessionRecord,
    UserKind,
    UserRecord,
)
from nevertrust.store.tables import (
    group_members,
    groups,
    handoff_codes,
    sessions,
    setup_tokens,
    users,
)

__all__ = [
    "SqlGroupRepository",
    "SqlHandoffRepository",
    "SqlSessionRepository",
    "SqlSetupTokenRepository",
    "SqlUserRepository",
]


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _groups_of(self, user_ids: Sequence[int]) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {uid: [] for uid in user_ids}
        if not user_ids:
            return result
        rows = self._conn.execute(
            select(group_members.c.user_id, groups.c.name)
            .join(groups, groups.c.id == group_members.c.group_id)
            .where(group_members.c.user_id.in_(user_ids))
            .order_by(groups.c.name)
        )
        for user_id, name in rows:
            result[user_id].append(name)
        return result

    def _record(self, row: Any, group_names: list[str]) -> UserRecord:
        return UserRecord(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            email=row.email,
            password_hash=row.password_hash,
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
            groups=tuple(group_names),
            kind=UserKind(row.kind),
            owner_id=row.owner_id,
            description=row.description,
            last_login_at=row.last_login_at,
        )

    def _one(self, clause: Any) -> UserRecord | None:
        row = self._conn.execute(select(users).where(clause)).first()
        if row is None:
            return None
        return self._record(row, self._groups_of([row.id])[row.id])

    def get_by_name(self, name: str) -> UserRecord | None:
        return self._one(users.c.name == name)

    def get_by_id(self, user_id: int) -> UserRecord | None:
        return self._one(users.c.id == user_id)

    def list(self) -> Sequence[UserRecord]:
        rows = self._conn.execute(select(users).order_by(users.c.name)).all()
        by_user = self._groups_of([r.id for r in rows])
        return [self._record(r, by_user[r.id]) for r in rows]

    def insert(
        self,
        *,
        name: str,
        display_name: str,
        email: str,
        now: datetime,
        kind: UserKind = UserKind.PERSON,
        owner_id: int | None = None,
        description: str = "",
    ) -> int:
        try:
            result = self._conn.execute(
                insert(users).values(
                    name=name,
                    display_name=display_name,
                    email=email,
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                    kind=str(kind),
                    owner_id=owner_id,
                    description=description,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"user {name!r} already exists", name=name) from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def set_enabled(self, user_id: int, enabled: bool, *, now: datetime) -> None:
        self._conn.execute(
            update(users).where(users.c.id == user_id).values(enabled=enabled, updated_at=now)
        )

    def set_password_hash(self, user_id: int, password_hash: str, *, now: datetime) -> None:
        self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_at=now)
        )

    def set_last_login(self, user_id: int, *, now: datetime) -> None:
        self._conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))

    def set_owner(self, user_id: int, owner_id: int | None, *, now: datetime) -> None:
        self._conn.execute(
            update(users).where(users.c.id == user_id).values(owner_id=owner_id, updated_at=now)
        )

    def set_description(self, user_id: int, description: str, *, now: datetime) -> None:
        self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(description=description, updated_at=now)
        )


class SqlGroupRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _members(self) -> dict[int, list[str]]:
        rows = self._conn.execute(
            select(group_members.c.group_id, users.c.name)
            .join(users, users.c.id == group_members.c.user_id)
            .order_by(users.c.name)
        )
        result: dict[int, list[str]] = {}
        for group_id, name in rows:
            result.setdefault(group_id, []).append(name)
        return result

    def get_by_name(self, name: str) -> GroupRecord | None:
        row = self._conn.execute(select(groups).where(groups.c.name == name)).first()
        if row is None:
            return None
        members = self._conn.execute(
            select(users.c.name)
            .join(group_members, group_members.c.user_id == users.c.id)
            .where(group_members.c.group_id == row.id)
            .order_by(users.c.name)
        ).scalars()
        return GroupRecord(
            row.id, row.name, row.description, tuple(members), mfa_required=row.mfa_required
        )

    def list(self) -> Sequence[GroupRecord]:
        members = self._members()
        rows = self._conn.execute(select(groups).order_by(groups.c.name))
        return [
            GroupRecord(
                r.id,
                r.name,
                r.description,
                tuple(members.get(r.id, [])),
                mfa_required=r.mfa_required,
            )
            for r in rows
        ]

    def set_mfa_required(self, group_id: int, required: bool) -> None:
        self._conn.execute(
            update(groups).where(groups.c.id == group_id).values(mfa_required=required)
        )

    def insert(self, *, name: str, description: str, now: datetime) -> int:
        try:
            result = self._conn.execute(
                insert(groups).values(name=name, description=description, created_at=now)
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"group {name!r} already exists", name=name) from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def add_member(self, group_id: int, user_id: int, *, now: datetime) -> bool:
        exists = self._conn.execute(
            select(group_members.c.user_id).where(
                and_(group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            )
        ).first()
        if exists:
            return False
        self._conn.execute(
            insert(group_members).values(group_id=group_id, user_id=user_id, added_at=now)
        )
        return True

    def remove_member(self, group_id: int, user_id: int) -> bool:
        result = self._conn.execute(
            delete(group_members).where(
                and_(group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            )
        )
        return result.rowcount > 0

    def memberships(self) -> Sequence[tuple[int, str]]:
        rows = self._conn.execute(
            select(group_members.c.user_id, groups.c.name).join(
                groups, groups.c.id == group_members.c.group_id
            )
        )
        return [(int(uid), str(name)) for uid, name in rows]


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
