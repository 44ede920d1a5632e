"""Shared fixtures: settings for a throwaway home, and real services on SQLite or PostgreSQL.

Services that need PostgreSQL or Redis read NEVERTRUST_TEST_POSTGRES_URL /
NEVERTRUST_TEST_REDIS_URL. Without them such tests skip, unless
NEVERTRUST_REQUIRE_SERVICES=1 (CI), where a missing service fails the run instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nevertrust.app import Services, build_services
from nevertrust.clock import FixedClock
from nevertrust.identity import Passwords
from nevertrust.settings import Settings

POSTGRES_URL = os.environ.get("NEVERTRUST_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("NEVERTRUST_TEST_REDIS_URL", "")
REQUIRE_SERVICES = os.environ.get("NEVERTRUST_REQUIRE_SERVICES") == "1"


def need_service(name: str, url: str) -> str:
    """Return the URL, or skip (locally) / fail (CI) when the service is not configured."""
    if url:
        return url
    message = f"{name} not configured (set NEVERTRUST_TEST_{name.upper()}_URL)"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and NEVERTRUST_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def fast_passwords() -> Passwords:
    """argon2id with small parameters: same code path, less waiting in tests."""
    return Passwords(memory_kib=1024, time_cost=1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def sqlite_settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture
def services(
    sqlite_settings: Settings, clock: FixedClock, fast_passwords: Passwords
) -> Iterator[Services]:
    """Real services on a fresh SQLite home."""
    svc = build_services(sqlite_settings, clock=clock, passwords=fast_passwords)
    yield svc
    svc.close()


def _admin_engine(base_url: str):  # type: ignore[no-untyped-def]
    return create_engine(
        base_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )


@pytest.fixture(scope="session")
def postgres_base_url(worker_id: str) -> Iterator[str]:
    """A database of our own per test run and xdist worker, dropped afterwards.

    The run id (the xdist controller's pid, or ours) keeps two concurrent test runs on one
    machine from dropping each other's databases.
    """
    url = need_service("postgres", POSTGRES_URL)
    run_id = os.getppid() if worker_id != "master" else os.getpid()
    name = f"nevertrust_test_{run_id}_{worker_id}"
    admin = _admin_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """An empty schema for each test: drop everything the last test left."""
    engine = create_engine(postgres_base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield postgres_base_url


@pytest.fixture
def pg_services(
    home: Path, postgres_url: str, clock: FixedClock, fast_passwords: Passwords
) -> Iterator[Services]:
    svc = build_services(
        Settings(home=home, database_url=postgres_url), clock=clock, passwords=fast_passwords
    )
    yield svc
    svc.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_services(request: pytest.FixtureRequest) -> Services:
    """The same test on both storage backends."""
    if request.param == "sqlite":
        return request.getfixturevalue("services")  # type: ignore[no-any-return]
    return request.getfixturevalue("pg_services")  # type: ignore[no-any-return]


@pytest.fixture
def redis_url() -> str:
    return need_service("redis", REDIS_URL)
