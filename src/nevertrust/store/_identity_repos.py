"""SQL repositories for users and groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from nevertrust.errors import AlreadyExists
from nevertrust.identity.models import (
    GroupRecord,
    UserKind,
    UserRecord,
)
from nevertrust.store.tables import (
    group_members,
    groups,
    users,
)

__all__ = ["SqlGroupRepository", "SqlUserRepository"]


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

    def any_requires_mfa(self, names: Sequence[str]) -> bool:
        """Whether any of the named groups is marked ``mfa_required`` (one indexed query)."""
        if not names:
            return False
        row = self._conn.execute(
            select(groups.c.id)
            .where(groups.c.name.in_(list(names)), groups.c.mfa_required.is_(True))
            .limit(1)
        ).first()
        return row is not None

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
