"""Integration-tier fixtures: both storage backends, and second processes on one database.

``any_services`` is redefined here so that its PostgreSQL case carries the ``postgres``
mark (``-m "not postgres"`` then deselects it like every other PostgreSQL test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from nevertrust.app import Services, build_services
from nevertrust.clock import FixedClock
from nevertrust.identity import Passwords

from ._support import PASSWORD, client_for


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_services(request: pytest.FixtureRequest) -> Services:
    """The same test on both storage backends; the PostgreSQL case is marked ``postgres``."""
    if request.param == "sqlite":
        return request.getfixturevalue("services")  # type: ignore[no-any-return]
    return request.getfixturevalue("pg_services")  # type: ignore[no-any-return]


@pytest.fixture
def open_peer(
    any_services: Services, clock: FixedClock, fast_passwords: Passwords
) -> Iterator[Callable[[], Services]]:
    """Open another, independent ``Services`` on the same database (own engine, own bus).

    This is what a second process (the CLI, another replica) looks like from the database.
    """
    opened: list[Services] = []

    def open_() -> Services:
        peer = build_services(
            any_services.settings, clock=clock, passwords=fast_passwords, migrate=False
        )
        opened.append(peer)
        return peer

    yield open_
    for peer in opened:
        peer.close()


@pytest.fixture
def peer(open_peer: Callable[[], Services]) -> Services:
    return open_peer()


@pytest.fixture
def open_peer_pg(
    pg_services: Services, clock: FixedClock, fast_passwords: Passwords
) -> Iterator[Services]:
    """A second, independent ``Services`` on ``pg_services``' database."""
    peer = build_services(
        pg_services.settings, clock=clock, passwords=fast_passwords, migrate=False
    )
    yield peer
    peer.close()


@pytest.fixture
def admin_and_alice(any_services: Services) -> Services:
    """Both backends with ``root`` (in ``admins``) and ``alice`` (no groups), password set."""
    d = any_services.directory
    d.add_group("admins", actor="cli:root")
    d.add_user("root", actor="cli:root", password=PASSWORD)
    d.set_membership("admins", "root", True, actor="cli:root")
    d.add_user("alice", actor="cli:root", password=PASSWORD)
    return any_services


@pytest.fixture
async def admin_browser(admin_and_alice: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The portal app in-process, as ``root``'s browser (session and CSRF cookies)."""
    async with client_for(admin_and_alice, "root") as client:
        yield client
