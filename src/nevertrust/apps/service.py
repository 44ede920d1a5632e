"""Use cases for the app catalog and its access rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nevertrust.apps.errors import UnknownApp
from nevertrust.apps.models import AppRecord, ConfigVersion, RuleRecord
from nevertrust.apps.upstreams import validate_upstream
from nevertrust.audit.models import Action, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.domain import AccessRule, App, validate_name
from nevertrust.identity.errors import UnknownGroup

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["CatalogService", "CatalogView"]


class CatalogView:
    """Apps and rules read in one transaction, ready to compile into a snapshot."""

    def __init__(self, apps: Sequence[App], rules: Sequence[AccessRule]) -> None:
        self.apps = apps
        self.rules = rules


class CatalogService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def _audit(
        self, uow: UnitOfWork, action: Action, *, actor: str, target: str, **details: object
    ) -> None:
        uow.audit.append(
            [success(action, ts=self._clock.now(), actor=actor, target=target, **details)]
        )

    def add_app(self, name: str, *, upstream: str, actor: str, description: str = "") -> AppRecord:
        validate_name("app", name)
        upstream = validate_upstream(upstream)
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.apps.insert(name=name, upstream=upstream, description=description[:500], now=now)
            self._audit(
                uow, Action.APP_CREATED, actor=actor, target=f"app:{name}", upstream=upstream
            )
            uow.changes.record(ChangeEvent(Topic.APP, name), now=now)
            record = uow.apps.get_by_name(name)
            assert record is not None  # noqa: S101 - inserted above in this transaction
            return record

    def update_app(
        self, name: str, *, upstream: str, actor: str, description: str | None = None
    ) -> AppRecord:
        upstream = validate_upstream(upstream)
        now = self._clock.now()
        with self._uow.write() as uow:
            app = self._require_app(uow, name)
            uow.apps.update(
                app.id,
                upstream=upstream,
                description=app.description if description is None else description[:500],
                now=now,
            )
            self._audit(
                uow,
                Action.APP_UPDATED,
                actor=actor,
                target=f"app:{name}",
                before=app.upstream,
                after=upstream,
            )
            uow.changes.record(ChangeEvent(Topic.APP, name), now=now)
            return self._require_app(uow, name)

    def remove_app(self, name: str, *, actor: str) -> None:
        now = self._clock.now()
        with self._uow.write() as uow:
            app = self._require_app(uow, name)
            uow.apps.delete(app.id)
            self._audit(uow, Action.APP_REMOVED, actor=actor, target=f"app:{name}")
            uow.changes.record(ChangeEvent(Topic.APP, name), now=now)

    def get_app(self, name: str) -> AppRecord:
        with self._uow.read() as uow:
            return self._require_app(uow, name)

    def find_app(self, name: str) -> AppRecord | None:
        with self._uow.read() as uow:
            return uow.apps.get_by_name(name)

    def list_apps(self) -> Sequence[AppRecord]:
        with self._uow.read() as uow:
            return uow.apps.list()

    def list_rules(self) -> Sequence[RuleRecord]:
        with self._uow.read() as uow:
            return uow.rules.list()

    def set_rule(
        self,
        app: str,
        group: str,
        allowed: bool,
        *,
        actor: str,
        origin: str = "cli",
        require_compliant_device: bool | None = None,
    ) -> bool:
        """Allow (or stop allowing) ``group`` to use ``app``; returns whether it changed.

        ``require_compliant_device`` also makes members of ``group`` need a compliant device
        for ``app``; ``None`` keeps an existing rule's setting (off for a new rule), so
        re-running ``apps allow`` without the flag never loosens a rule by accident.
        """
        now = self._clock.now()
        with self._uow.write() as uow:
            app_record = self._require_app(uow, app)
            group_record = uow.groups.get_by_name(group)
            if group_record is None:
                raise UnknownGroup(f"no group named {group!r}", name=group)
            ids = {"app_id": app_record.id, "group_id": group_record.id}
            device = require_compliant_device
            action = Action.RULE_ADDED if allowed else Action.RULE_REMOVED
            if not allowed:
                changed = uow.rules.delete(**ids)
            elif uow.rules.insert(
                **ids, origin=origin, now=now, require_compliant_device=bool(device)
            ):
                changed = True
            else:
                action = Action.RULE_UPDATED
                changed = device is not None and uow.rules.set_require_compliant_device(
                    **ids, value=device
                )
            if changed:
                details: dict[str, object] = {"group": group}
                if allowed:
                    details["require_compliant_device"] = bool(device)
                self._audit(uow, action, actor=actor, target=f"app:{app}", **details)
                uow.changes.record(ChangeEvent(Topic.RULE, app), now=now)
            return changed

    def view(self) -> CatalogView:
        with self._uow.read() as uow:
            apps = [App(a.name, a.upstream, a.description, a.labels) for a in uow.apps.list()]
            rules = [
                AccessRule(r.rule_id, r.app, r.group, r.require_compliant_device)
                for r in uow.rules.list()
            ]
        return CatalogView(apps, rules)

    def config_versions(self, *, limit: int = 50) -> Sequence[ConfigVersion]:
        with self._uow.read() as uow:
            return uow.configs.list(limit=limit)

    @staticmethod
    def _require_app(uow: UnitOfWork, name: str) -> AppRecord:
        app = uow.apps.get_by_name(name)
        if app is None:
            raise UnknownApp(f"no app named {name!r}", name=name)
        return app
