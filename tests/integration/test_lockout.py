"""Lockout as a browser meets it: the real portal app, its login form, both backends.

A banned sign-in must look exactly like a wrong password (status, page, headers) whether or
not the user exists, and cost the same password-hashing work, so that neither the ban nor
the account's existence can be read from the answer or its timing. The hasher here is the
real argon2id ``Passwords``, counting its verifications.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from nevertrust.app import Services, build_services
from nevertrust.clock import FixedClock
from nevertrust.identity import Passwords
from nevertrust.settings import Settings
from nevertrust.web.api import build_api
from nevertrust.web.portal import PortalContext, build_portal

from ._support import PASSWORD

BASE = "http://auth.localhost"
WRONG = "a wrong password, surely"


class CountingPasswords(Passwords):
    """The real argon2id hasher, counting how often it verifies."""

    def __init__(self) -> None:
        super().__init__(memory_kib=1024, time_cost=1)
        self._lock = threading.Lock()
        self.verifications = 0

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self._lock:
            self.verifications += 1
        return super().verify(password_hash, password)


@pytest.fixture
def passwords() -> CountingPasswords:
    return CountingPasswords()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def svc(
    request: pytest.FixtureRequest, home: Path, clock: FixedClock, passwords: CountingPasswords
) -> Iterator[Services]:
    database_url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    services = build_services(
        Settings(home=home, database_url=database_url), clock=clock, passwords=passwords
    )
    for name in ("alice", "bob"):
        services.directory.add_user(name, actor="cli:root", password=PASSWORD)
    yield services
    services.close()


def browser(svc: Services, ip: str = "198.51.100.20") -> httpx.AsyncClient:
    portal = build_portal(PortalContext(svc), api=build_api(svc))
    transport = httpx.ASGITransport(app=portal, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


@pytest.fixture
async def client(svc: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(svc) as c:
        yield c


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "csrf_token": csrf_of(form.text),
            "username": username,
            "password": password,
            "rd": "",
            "state": "",
        },
    )


async def fail(client: httpx.AsyncClient, username: str, times: int) -> None:
    for _ in range(times):
        response = await sign_in(client, username, WRONG)
        assert response.status_code == 401, response.text


def signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and "nt_session" in response.headers.get("set-cookie", "")


def seen(response: httpx.Response, username: str) -> tuple[int, str, list[tuple[str, str]]]:
    """What the browser gets, minus what must differ: the form token and the echoed name."""
    body = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value="-"', response.text)
    body = body.replace(f'value="{username}"', 'value="-"')
    headers = sorted(
        (k, v) for k, v in response.headers.items() if k not in ("content-length", "date")
    )
    return response.status_code, body, headers


async def test_after_three_failures_even_the_right_password_is_refused(
    svc: Services, client: httpx.AsyncClient, clock: FixedClock
) -> None:
    await fail(client, "alice", 3)

    refused = await sign_in(client, "alice", PASSWORD)

    assert refused.status_code == 401
    assert "Wrong user name or password." in refused.text
    assert "nt_session" not in refused.headers.get("set-cookie", "")
    # Other people, and alice from another address, are banned or not by name only.
    async with browser(svc) as bobs:
        assert signed_in(await sign_in(bobs, "bob", PASSWORD))
    async with browser(svc, ip="203.0.113.77") as elsewhere:
        assert (await sign_in(elsewhere, "alice", PASSWORD)).status_code == 401

    clock.advance(timedelta(minutes=5))
    assert signed_in(await sign_in(client, "alice", PASSWORD))


async def test_a_banned_user_a_banned_stranger_and_a_wrong_password_look_alike(
    svc: Services, client: httpx.AsyncClient
) -> None:
    await fail(client, "alice", 3)
    await fail(client, "ghost", 3)  # nobody is called ghost

    banned_user = await sign_in(client, "alice", PASSWORD)  # the RIGHT password
    banned_stranger = await sign_in(client, "ghost", PASSWORD)
    wrong_password = await sign_in(client, "bob", WRONG)

    assert seen(banned_user, "alice") == seen(banned_stranger, "ghost")
    assert seen(banned_user, "alice") == seen(wrong_password, "bob")
    assert banned_user.status_code == 401


async def test_banned_and_plain_failures_cost_the_same_password_hashing(
    svc: Services, client: httpx.AsyncClient, passwords: CountingPasswords
) -> None:
    await fail(client, "alice", 3)
    await fail(client, "ghost", 3)

    costs: dict[str, int] = {}
    for label, username, password in [
        ("banned user, right password", "alice", PASSWORD),
        ("banned user, wrong password", "alice", WRONG),
        ("banned stranger", "ghost", PASSWORD),
        ("wrong password", "bob", WRONG),
        ("unknown user", "nobody", WRONG),
    ]:
        before = passwords.verifications
        response = await sign_in(client, username, password)
        assert response.status_code == 401, label
        costs[label] = passwords.verifications - before

    assert set(costs.values()) == {1}, costs


async def test_an_address_spraying_names_is_refused_for_every_name(svc: Services) -> None:
    async with browser(svc, ip="192.0.2.66") as sprayer:
        for n in range(20):
            assert (await sign_in(sprayer, f"user{n}", WRONG)).status_code == 401

        # Twenty names, one guess each: no name is banned, the address is.
        assert (await sign_in(sprayer, "bob", PASSWORD)).status_code == 401
    async with browser(svc, ip="192.0.2.67") as neighbour:
        assert signed_in(await sign_in(neighbour, "bob", PASSWORD))


def oathtool(secret: str, clock: FixedClock) -> str:
    result = subprocess.run(
        ["oathtool", "--totp", "-b", "-N", f"@{int(clock.now().timestamp())}", secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


async def test_wrong_second_factor_codes_count_towards_the_same_ban(
    svc: Services, client: httpx.AsyncClient, clock: FixedClock
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    first = await sign_in(client, "alice", PASSWORD)
    assert (first.status_code, first.headers["location"].split("?")[0]) == (303, "/login/mfa")

    async def submit(code: str) -> httpx.Response:
        page = await client.get("/login/mfa")
        return await client.post("/login/mfa", data={"csrf_token": csrf_of(page.text), "otp": code})

    for code in ("000000", "111111", "222222"):
        assert (await submit(code)).status_code == 401

    # The right code no longer helps, and neither does starting over with the password.
    assert (await submit(oathtool(secret, clock))).status_code == 401
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 401
