"""SQL repositories for apps, access rules and declarative config versions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from nevertrust.apps.models import AppRecord, ConfigVersion, RuleRecord
from nevertrust.errors import AlreadyExists
from nevertrust.store._versions_repo import VersionedDocuments
from nevertrust.store.tables import access_rules, apps, config_versions, groups

__all__ = ["SqlAppRepository", "SqlConfigRepository", "SqlRuleRepository", "rule_id_for"]


def rule_id_for(app: str, group: str) -> str:
    """Stable, readable rule identifier shown in decisions and audit records."""
    return f"allow:{app}:{group}"


def _app(row: Any) -> AppRecord:
    return AppRecord(
        id=row.id,
        name=row.name,
        upstream=row.upstream,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        labels=json.loads(row.labels or "{}"),
    )


def _labels(labels: Mapping[str, str] | None) -> str:
    return json.dumps(dict(labels or {}), sort_keys=True)


class SqlAppRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_by_name(self, name: str) -> AppRecord | None:
        row = self._conn.execute(select(apps).where(apps.c.name == name)).first()
        return None if row is None else _app(row)

    def list(self) -> Sequence[AppRecord]:
        return [_app(r) for r in self._conn.execute(select(apps).order_by(apps.c.name))]

    def insert(
        self,
        *,
        name: str,
        upstream: str,
        description: str,
        now: datetime,
        labels: Mapping[str, str] | None = None,
    ) -> int:
        try:
            result = self._conn.execute(
                insert(apps).values(
                    name=name,
                    upstream=upstream,
                    description=description,
                    labels=_labels(labels),
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"app {name!r} already exists", name=name) from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update(
        self,
        app_id: int,
        *,
        upstream: str,
        description: str,
        now: datetime,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "upstream": upstream,
            "description": description,
            "updated_at": now,
        }
        if labels is not None:
            values["labels"] = _labels(labels)
        self._conn.execute(update(apps).where(apps.c.id == app_id).values(**values))

    def delete(self, app_id: int) -> None:
        self._conn.execute(delete(access_rules).where(access_rules.c.app_id == app_id))
        self._conn.execute(delete(apps).where(apps.c.id == app_id))


class SqlRuleRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def list(self) -> Sequence[RuleRecord]:
        rows = self._conn.execute(
            select(
                apps.c.name.label("app"),
                groups.c.name.label("group"),
                access_rules.c.origin,
                access_rules.c.require_compliant_device,
            )
            .select_from(access_rules)
            .join(apps, apps.c.id == access_rules.c.app_id)
            .join(groups, groups.c.id == access_rules.c.group_id)
            .order_by(apps.c.name, groups.c.name)
        )
        return [
            RuleRecord(
                rule_id_for(r.app, r.group),
                r.app,
                r.group,
                r.origin,
                bool(r.require_compliant_device),
            )
            for r in rows
        ]

    def insert(
        self,
        *,
        app_id: int,
        group_id: int,
        origin: str,
        now: datetime,
        require_compliant_device: bool = False,
    ) -> bool:
        exists = self._conn.execute(
            select(access_rules.c.id).where(
                and_(access_rules.c.app_id == app_id, access_rules.c.group_id == group_id)
            )
        ).first()
        if exists:
            return False
        self._conn.execute(
            insert(access_rules).values(
                app_id=app_id,
                group_id=group_id,
                origin=origin,
                created_at=now,
                require_compliant_device=require_compliant_device,
            )
        )
        return True

    def set_require_compliant_device(self, *, app_id: int, group_id: int, value: bool) -> bool:
        result = self._conn.execute(
            update(access_rules)
            .where(
                access_rules.c.app_id == app_id,
                access_rules.c.group_id == group_id,
                access_rules.c.require_compliant_device != value,
            )
            .values(require_compliant_device=value)
        )
        return result.rowcount > 0

    def delete(self, *, app_id: int, group_id: int) -> bool:
        result = self._conn.execute(
            delete(access_rules).where(
                and_(access_rules.c.app_id == app_id, access_rules.c.group_id == group_id)
            )
        )
        return result.rowcount > 0

    def delete_for_app(self, app_id: int) -> int:
        result = self._conn.execute(delete(access_rules).where(access_rules.c.app_id == app_id))
        return int(result.rowcount)


class SqlConfigRepository(VersionedDocuments[ConfigVersion]):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn, table=config_versions, record=ConfigVersion)
