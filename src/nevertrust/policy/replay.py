"""Replay: decide recorded gateway requests again under a draft policy.

Each recorded decision carries what the gateway knew (user, groups, app, method, path,
source, sign-in methods and time), so a draft can be judged against real traffic before
it is enforced: who would newly be denied, who would newly be allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from nevertrust.audit.models import Action, SealedRecord
from nevertrust.domain import AccessRequest, Principal
from nevertrust.pdp import PolicySnapshot, decide

__all__ = ["ChangeGroup", "ReplayReport", "replay"]

_DECISIONS = frozenset({str(Action.DECISION_ALLOWED), str(Action.DECISION_DENIED)})


@dataclass(slots=True)
class ChangeGroup:
    user: str
    app: str
    count: int = 0
    example_path: str = ""
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None


@dataclass(slots=True)
class ReplayReport:
    replayed: int = 0
    unchanged: int = 0
    newly_denied: dict[tuple[str, str], ChangeGroup] = field(default_factory=dict)
    newly_allowed: dict[tuple[str, str], ChangeGroup] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def to_json(self) -> dict[str, object]:
        def groups(items: dict[tuple[str, str], ChangeGroup]) -> list[dict[str, object]]:
            return [
                {
                    "user": g.user,
                    "app": g.app,
                    "requests": g.count,
                    "example_path": g.example_path,
                    "reasons": g.reasons,
                    "rule": g.rule,
                }
                for g in sorted(items.values(), key=lambda g: (-g.count, g.user, g.app))
            ]

        return {
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "newly_denied": groups(self.newly_denied),
            "newly_allowed": groups(self.newly_allowed),
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
        }


def _request(record: SealedRecord) -> AccessRequest | None:
    if not record.actor.startswith("user:") or not record.target.startswith("app:"):
        return None
    details = json.loads(record.details)
    auth_time = details.get("auth_time")
    return AccessRequest(
        principal=Principal(
            user_id=0,
            name=record.actor.removeprefix("user:"),
            groups=frozenset(details.get("groups", [])),
        ),
        app=record.target.removeprefix("app:"),
        method=details.get("method", "GET"),
        path=details.get("path", "/"),
        source_ip=record.source,
        auth_methods=frozenset(details.get("methods", ["pwd"])),
        auth_time=datetime.fromisoformat(auth_time) if auth_time else None,
    )


def replay(records: Iterable[SealedRecord], draft: PolicySnapshot) -> ReplayReport:
    """Compare each recorded gateway decision with what ``draft`` decides for it."""
    report = ReplayReport()
    for record in records:
        if record.action not in _DECISIONS:
            continue
        request = _request(record)
        if request is None:
            continue
        report.replayed += 1
        report.first = report.first or record.ts
        report.last = record.ts
        was_allowed = record.action == str(Action.DECISION_ALLOWED)
        decision = decide(request, draft, record.ts)
        if decision.allowed == was_allowed:
            report.unchanged += 1
            continue
        bucket = report.newly_allowed if decision.allowed else report.newly_denied
        key = (request.principal.name, request.app)
        group = bucket.setdefault(key, ChangeGroup(user=key[0], app=key[1]))
        group.count += 1
        group.example_path = group.example_path or request.path
        group.reasons = [str(r) for r in decision.reasons]
        group.rule = decision.rule_id
    return report
