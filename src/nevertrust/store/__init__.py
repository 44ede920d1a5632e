"""Storage adapter: SQLAlchemy Core on SQLite or PostgreSQL, migrated with Alembic."""

from __future__ import annotations

from nevertrust.store._changes_repo import NOTIFY_CHANNEL
from nevertrust.store.database import Database
from nevertrust.store.errors import DatabaseUnavailable
from nevertrust.store.migrate import upgrade
from nevertrust.store.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "NOTIFY_CHANNEL",
    "Database",
    "DatabaseUnavailable",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "upgrade",
]
