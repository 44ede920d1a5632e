"""Decide one access request against a compiled snapshot. Default deny; fail closed."""

from __future__ import annotations

import logging

from nevertrust.domain import AccessRequest, Decision, Reason
from nevertrust.pdp.snapshot import PolicySnapshot

__all__ = ["decide"]

_log = logging.getLogger("nevertrust.pdp")


def _evaluate(request: AccessRequest, snapshot: PolicySnapshot) -> Decision:
    principal = request.principal
    if not principal.enabled:
        return Decision.deny(Reason.USER_DISABLED)
    compiled = snapshot.apps.get(request.app)
    if compiled is None:
        return Decision.deny(Reason.UNKNOWN_APP, detail=f"no app named {request.app!r}")
    allowed = compiled.allowed_groups
    if not allowed:
        return Decision.deny(Reason.NO_RULE_FOR_APP, detail=f"app {request.app!r} has no rules")
    # Walk the app's rules (in their stored order), not the user's groups: a frozenset's
    # order differs between processes, and every replica must name the same rule.
    groups = principal.groups
    for group, rule_id in allowed.items():
        if group in groups:
            return Decision.allow(
                Reason.ALLOWED_BY_GROUP, rule_id=rule_id, detail=f"member of group {group!r}"
            )
    return Decision.deny(
        Reason.NOT_IN_ALLOWED_GROUP,
        detail=(
            f"app {request.app!r} allows groups {sorted(allowed)}; "
            f"user {principal.name!r} is in {sorted(principal.groups)}"
        ),
    )


def decide(request: AccessRequest, snapshot: PolicySnapshot) -> Decision:
    """Return the decision for ``request``. Any error while evaluating denies."""
    try:
        return _evaluate(request, snapshot)
    except Exception:  # noqa: BLE001 - the PDP guard: any failure denies
        _log.exception("decision_failed")
        return Decision.deny(Reason.INTERNAL_ERROR)
