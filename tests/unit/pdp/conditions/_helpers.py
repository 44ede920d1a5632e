"""Requests for condition tests: everything unknown unless given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nevertrust.domain import AccessRequest, Principal

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def request(
    *,
    name: str = "alice",
    groups: frozenset[str] = frozenset(),
    roles: frozenset[str] = frozenset(),
    **fields: Any,
) -> AccessRequest:
    principal = Principal(user_id=1, name=name, groups=groups, roles=roles)
    return AccessRequest(principal=principal, app="whoami", **fields)
