"""Alembic migrations on an empty database, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from nevertrust.audit.chain import GENESIS_HASH
from nevertrust.store import Database, upgrade
from nevertrust.store.migrate import current_revision, head_revision
from nevertrust.store.tables import audit_head, metadata, users


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    yield db
    db.dispose()


def test_upgrade_from_empty_creates_every_table_at_head(empty_db: Database) -> None:
    assert current_revision(empty_db) is None

    upgrade(empty_db)

    assert head_revision() is not None
    assert current_revision(empty_db) == head_revision()
    tables = set(inspect(empty_db.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    with empty_db.engine.connect() as conn:
        head = conn.execute(select(audit_head.c.id, audit_head.c.seq, audit_head.c.hash)).all()
    assert [tuple(r) for r in head] == [(1, 0, GENESIS_HASH)]


def test_migrated_schema_matches_the_table_definitions(empty_db: Database) -> None:
    upgrade(empty_db)

    with empty_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)

    assert diff == []


def test_second_upgrade_is_a_no_op_that_keeps_data(empty_db: Database) -> None:
    upgrade(empty_db)
    with empty_db.engine.begin() as conn:
        conn.execute(
            users.insert().values(
                name="alice",
                display_name="",
                email="",
                enabled=True,
                created_at=func.now(),
                updated_at=func.now(),
            )
        )

    upgrade(empty_db)

    assert current_revision(empty_db) == head_revision()
    with empty_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(audit_head)).scalar_one() == 1
