"""Use cases for policies: apply versions, roll back, what-if, replay, test."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.domain import AccessRule, App, Decision
from nevertrust.pdp import (
    PolicyDocument,
    PolicySnapshot,
    compile_snapshot,
    decide,
    parse_policy_document,
)
from nevertrust.policy.cases import CaseResult, PolicyTestFile, run_cases
from nevertrust.policy.errors import UnknownPolicyVersion
from nevertrust.policy.models import PolicyVersion
from nevertrust.policy.replay import ReplayReport, replay
from nevertrust.policy.requests import RequestSpec

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["AppliedPolicy", "PolicyService"]


@dataclass(frozen=True, slots=True)
class AppliedPolicy:
    version: int | None  # None: dry run, or identical to the version in force
    summary: tuple[str, ...]
    warnings: tuple[str, ...]


def _summary(old: PolicyDocument | None, new: PolicyDocument) -> list[str]:
    """Which policies were added, removed or changed (a diff an auditor can read)."""
    before = {p.name: p for p in (old.policies if old else [])}
    after = {p.name: p for p in new.policies}
    lines = [f"policy {name}: added ({after[name].mode})" for name in after if name not in before]
    lines += [f"policy {name}: removed" for name in before if name not in after]
    for name in after:
        if name in before and before[name] != after[name]:
            if before[name].mode != after[name].mode:
                lines.append(f"policy {name}: mode {before[name].mode} -> {after[name].mode}")
            else:
                lines.append(f"policy {name}: changed")
    return lines


class PolicyService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # Versions

    def active(self) -> PolicyVersion | None:
        with self._uow.read() as uow:
            return uow.policies.latest()

    def active_document(self) -> PolicyDocument | None:
        """The document in force, for the gateway snapshot (validated when applied)."""
        current = self.active()
        if current is None:
            return None
        return parse_policy_document(current.document, file=f"policy v{current.version}")

    def history(self, *, limit: int = 50) -> Sequence[PolicyVersion]:
        with self._uow.read() as uow:
            return uow.policies.list(limit=limit)

    def get(self, version: int) -> PolicyVersion:
        with self._uow.read() as uow:
            found = uow.policies.get(version)
        if found is None:
            raise UnknownPolicyVersion(f"no policy version {version}", version=version)
        return found

    def validate(self, text: str, *, file: str) -> tuple[PolicyDocument, tuple[str, ...]]:
        """Parse and compile against the current apps; raises PolicyError with the place."""
        document = parse_policy_document(text, file=file)
        snapshot = self.snapshot(document)
        return document, snapshot.warnings

    def apply(self, text: str, *, file: str, actor: str, dry_run: bool = False) -> AppliedPolicy:
        """Validate the whole document, then store it as the new version in force.

        A document that does not parse or validate is rejected whole; the policy in
        force stays. Every replica rebuilds its snapshot from the change event.
        """
        document, warnings = self.validate(text, file=file)
        now = self._clock.now()
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._uow.write() as uow:
            current = uow.policies.latest()
            old = (
                parse_policy_document(current.document, file="current")
                if current is not None
                else None
            )
            summary = _summary(old, document)
            if dry_run or (current is not None and current.sha256 == digest):
                return AppliedPolicy(None, tuple(summary), warnings)
            version = uow.policies.insert(
                document=text,
                sha256=digest,
                source=file,
                applied_by=actor,
                summary="\n".join(summary),
                now=now,
            )
            self._audit(uow, actor, version, summary, file)
            uow.changes.record(ChangeEvent(Topic.POLICY, str(version)), now=now)
        return AppliedPolicy(version, tuple(summary), warnings)

    def rollback(self, version: int, *, actor: str) -> AppliedPolicy:
        """Put an earlier version back in force, as a new version (history is kept)."""
        old = self.get(version)
        return self.apply(old.document, file=f"rollback to v{version}", actor=actor)

    def _audit(
        self, uow: UnitOfWork, actor: str, version: int, summary: list[str], file: str
    ) -> None:
        uow.audit.append(
            [
                AuditEntry(
                    ts=self._clock.now(),
                    actor=actor,
                    action=Action.POLICY_APPLIED,
                    outcome=Outcome.SUCCESS,
                    target=f"policy:v{version}",
                    details={"file": file, "changes": summary},
                )
            ]
        )

    # Evaluation

    def _catalog(self) -> tuple[list[App], list[AccessRule]]:
        with self._uow.read() as uow:
            apps = [App(a.name, a.upstream, a.description, a.labels) for a in uow.apps.list()]
            rules = [
                AccessRule(r.rule_id, r.app, r.group, r.require_compliant_device)
                for r in uow.rules.list()
            ]
        return apps, rules

    def snapshot(self, document: PolicyDocument | None) -> PolicySnapshot:
        apps, rules = self._catalog()
        return compile_snapshot(version=0, apps=apps, rules=rules, policies=document)

    def what_if(self, spec: RequestSpec, *, draft: str | None = None) -> Decision:
        """Decide a described request under the policy in force, or under a draft."""
        document = (
            parse_policy_document(draft, file="draft")
            if draft is not None
            else self.active_document()
        )
        now = self._clock.now()
        with self._uow.read() as uow:
            user = uow.users.get_by_name(spec.user)
        if user is not None and not user.enabled:
            # The gateway denies a disabled user before any rule; what-if must agree.
            spec = spec.model_copy(update={"enabled": False})
        request = spec.to_request(
            now=now,
            user_id=user.id if user else 0,
            current_groups=frozenset(user.groups) if user else None,
        )
        return decide(request, self.snapshot(document), spec.when(now), explain=True)

    def replay(self, draft: str, *, since: timedelta, limit: int = 100_000) -> ReplayReport:
        """Decide recorded gateway requests of the last ``since`` again under ``draft``."""
        document = parse_policy_document(draft, file="draft")
        snapshot = self.snapshot(document)
        cutoff = self._clock.now() - since
        with self._uow.read() as uow:
            records = [r for r in uow.audit.tail(limit) if r.ts >= cutoff]
        return replay(records, snapshot)

    def run_tests(
        self, tests: PolicyTestFile, *, document: PolicyDocument | None
    ) -> Sequence[CaseResult]:
        return run_cases(tests, policies=document, now=self._clock.now())

    def now(self) -> datetime:
        return self._clock.now()
