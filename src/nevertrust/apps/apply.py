"""Reconcile the database with a declarative access file, all or nothing.

Apps and groups named in the file are created or updated to match it; each listed app's
allowed groups become exactly the listed ones. Apps missing from the file are left alone
unless ``prune`` is set. The document is stored as a new version with the list of changes,
and one audit record carries that diff.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nevertrust.apps.declarative import AccessDocument, node_mark, parse_access_document
from nevertrust.apps.errors import ConfigFileError
from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["ApplyResult", "ApplyService"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    version: int | None  # None for a dry run or when nothing changed
    changes: tuple[str, ...]


class _DryRun(Exception):
    """Raised inside the transaction to roll back a dry run."""


class ApplyService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def apply(
        self, text: str, *, file: str, actor: str, prune: bool = False, dry_run: bool = False
    ) -> ApplyResult:
        doc = parse_access_document(text, file=file)
        changes: list[str] = []
        version: int | None = None
        try:
            with self._uow.write() as uow:
                changes = self._reconcile(uow, doc, text=text, file=file, prune=prune)
                if dry_run:
                    raise _DryRun
                if changes:
                    now = self._clock.now()
                    version = uow.configs.insert(
                        document=text,
                        sha256=hashlib.sha256(text.encode()).hexdigest(),
                        source=file,
                        applied_by=actor,
                        summary="\n".join(changes),
                        now=now,
                    )
                    uow.audit.append(
                        [
                            AuditEntry(
                                ts=now,
                                actor=actor,
                                action=Action.CONFIG_APPLIED,
                                outcome=Outcome.SUCCESS,
                                target=f"config:v{version}",
                                details={"file": file, "changes": changes},
                            )
                        ]
                    )
                    uow.changes.record(ChangeEvent(Topic.CONFIG, str(version)), now=now)
        except _DryRun:
            pass
        return ApplyResult(version=version, changes=tuple(changes))

    def _reconcile(
        self, uow: UnitOfWork, doc: AccessDocument, *, text: str, file: str, prune: bool
    ) -> list[str]:
        now = self._clock.now()
        changes: list[str] = []

        def error(message: str, loc: tuple[int | str, ...]) -> ConfigFileError:
            line, column = node_mark(text, loc)
            return ConfigFileError(message, file=file, line=line, column=column)

        for gi, group_spec in enumerate(doc.groups):
            group = uow.groups.get_by_name(group_spec.name)
            if group is None:
                uow.groups.insert(name=group_spec.name, description=group_spec.description, now=now)
                changes.append(f"group {group_spec.name}: created")
                group = uow.groups.get_by_name(group_spec.name)
                assert group is not None  # noqa: S101 - inserted above
            wants_mfa = group_spec.require_mfa
            if wants_mfa is not None and wants_mfa != group.mfa_required:
                uow.groups.set_mfa_required(group.id, wants_mfa)
                changes.append(
                    f"group {group_spec.name}: "
                    + (
                        "second factor required"
                        if wants_mfa
                        else "second factor no longer required"
                    )
                )
            if group_spec.members is None:
                continue
            wanted = set(group_spec.members)
            for mi, member in enumerate(group_spec.members):
                user = uow.users.get_by_name(member)
                if user is None:
                    raise error(f"no user named {member!r}", ("groups", gi, "members", mi))
                if member not in group.members:
                    uow.groups.add_member(group.id, user.id, now=now)
                    changes.append(f"group {group_spec.name}: added {member}")
            for member in group.members:
                if member not in wanted:
                    user = uow.users.get_by_name(member)
                    if user is not None:
                        uow.groups.remove_member(group.id, user.id)
                        changes.append(f"group {group_spec.name}: removed {member}")

        listed = {app_spec.name for app_spec in doc.apps}
        current_rules = {(r.app, r.group): r.require_compliant_device for r in uow.rules.list()}
        for ai, spec in enumerate(doc.apps):
            app = uow.apps.get_by_name(spec.name)
            if app is None:
                app_id = uow.apps.insert(
                    name=spec.name,
                    upstream=spec.upstream,
                    description=spec.description,
                    now=now,
                    labels=spec.labels,
                )
                changes.append(f"app {spec.name}: created with upstream {spec.upstream}")
            else:
                app_id = app.id
                if (app.upstream, app.description, dict(app.labels)) != (
                    spec.upstream,
                    spec.description,
                    spec.labels,
                ):
                    uow.apps.update(
                        app_id,
                        upstream=spec.upstream,
                        description=spec.description,
                        now=now,
                        labels=spec.labels,
                    )
                    changes.append(
                        f"app {spec.name}: upstream {app.upstream} -> {spec.upstream}"
                        if app.upstream != spec.upstream
                        else f"app {spec.name}: description or labels changed"
                    )
            wanted_groups = set(spec.allow.groups)
            for gi, group_name in enumerate(spec.allow.groups):
                group = uow.groups.get_by_name(group_name)
                if group is None:
                    raise error(
                        f"no group named {group_name!r}; declare it under 'groups:' or create it "
                        "with 'nevertrust groups add'",
                        ("apps", ai, "allow", "groups", gi),
                    )
                device = spec.allow.needs_device(group_name)
                current = current_rules.get((spec.name, group_name))
                if current is None:
                    uow.rules.insert(
                        app_id=app_id,
                        group_id=group.id,
                        origin=f"apply:{file}"[:64],
                        now=now,
                        require_compliant_device=device,
                    )
                    with_device = " with a compliant device" if device else ""
                    changes.append(f"app {spec.name}: allow group {group_name}{with_device}")
                elif current != device:
                    uow.rules.set_require_compliant_device(
                        app_id=app_id, group_id=group.id, value=device
                    )
                    changes.append(
                        f"app {spec.name}: group {group_name} "
                        + ("now needs" if device else "no longer needs")
                        + " a compliant device"
                    )
            for app_name, group_name in current_rules:
                if app_name == spec.name and group_name not in wanted_groups:
                    group = uow.groups.get_by_name(group_name)
                    if group is not None:
                        uow.rules.delete(app_id=app_id, group_id=group.id)
                        changes.append(f"app {spec.name}: no longer allow group {group_name}")
        if prune:
            for app in uow.apps.list():
                if app.name not in listed:
                    uow.apps.delete(app.id)
                    changes.append(f"app {app.name}: removed (not in file)")
        return changes
