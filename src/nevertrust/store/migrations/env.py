"""Alembic environment: the engine is handed in by ``nevertrust.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from nevertrust.store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # invoked by the alembic CLI for autogenerate
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
