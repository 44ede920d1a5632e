"""SQL repository for policy document versions."""

from __future__ import annotations

from sqlalchemy import Connection

from nevertrust.policy.models import PolicyVersion
from nevertrust.store._versions_repo import VersionedDocuments
from nevertrust.store.tables import policy_versions

__all__ = ["SqlPolicyRepository"]


class SqlPolicyRepository(VersionedDocuments[PolicyVersion]):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn, table=policy_versions, record=PolicyVersion)
