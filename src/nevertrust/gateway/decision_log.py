"""The audit record of one gateway decision: what replay needs to decide the request
again later (groups, method, path, sign-in methods and time), and what a report-only
policy would have decided instead."""

from __future__ import annotations

from datetime import datetime

from nevertrust.audit import Action, AuditEntry, Outcome
from nevertrust.domain import Decision, DeviceState, Principal
from nevertrust.gateway.state import CachedSession

__all__ = ["decision_entry"]


def decision_entry(
    decision: Decision,
    principal: Principal,
    session: CachedSession,
    *,
    app_name: str,
    method: str,
    path: str,
    client_ip: str,
    request_id: str,
    now: datetime,
    device: DeviceState | None = None,
) -> AuditEntry:
    details: dict[str, object] = {
        "method": method,
        "path": path[:300],
        "rule": decision.rule_id,
        "detail": decision.detail[:500],
        "request_id": request_id,
        "groups": sorted(principal.groups),
        "methods": sorted(session.auth_methods),
        "auth_time": session.auth_time.isoformat(),
    }
    if device is not None:
        details["device"] = {"id": device.device_id, "compliant": device.compliant}
    if decision.shadow is not None:
        details["report_only"] = {
            "effect": str(decision.shadow.effect),
            "reasons": [str(r) for r in decision.shadow.reasons],
            "rule": decision.shadow.rule_id,
        }
    return AuditEntry(
        ts=now,
        actor=f"user:{principal.name}",
        action=Action.DECISION_ALLOWED if decision.allowed else Action.DECISION_DENIED,
        outcome=Outcome.ALLOW if decision.allowed else Outcome.DENY,
        target=f"app:{app_name}",
        source=client_ip,
        reason=",".join(decision.reasons),
        details=details,
    )
