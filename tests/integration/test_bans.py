"""Seeing and lifting bans: `nevertrust bans` as a separate process, /api/v1/bans, console.

The CLI is another process with its own counters: it shares the server's only through the
database (bans) and, when configured, Redis (failure counts). Both set-ups are tested.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from nevertrust.app import Services, build_services
from nevertrust.audit import Action
from nevertrust.clock import SystemClock
from nevertrust.identity import InvalidCredentials, Passwords
from nevertrust.regulation_storage import key_prefix_for
from nevertrust.settings import Settings

from ._support import PASSWORD, audit_records, client_for

_BIN = Path(sys.executable).parent / "nevertrust"
IP = "203.0.113.50"


# The server's side and the CLI's side of one deployment (real clock: the CLI has no other).


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def counters_url(request: pytest.FixtureRequest) -> str:
    return "" if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture
def server(
    home: Path, database_url: str, counters_url: str, fast_passwords: Passwords
) -> Iterator[Services]:
    settings = Settings(home=home, database_url=database_url, redis_url=counters_url)
    svc = build_services(settings, clock=SystemClock(), passwords=fast_passwords)
    svc.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    yield svc
    svc.close()
    if counters_url:
        with redis.Redis.from_url(counters_url) as client:
            keys = list(client.scan_iter(match=f"{key_prefix_for(svc.master_key)}:*"))
            if keys:
                client.delete(*keys)


def cli(server: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    settings = server.settings
    if settings.database_url:
        env["NEVERTRUST_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["NEVERTRUST_REDIS_URL"] = settings.redis_url
    return subprocess.run(
        [str(_BIN), "--home", str(settings.home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fail(svc: Services, times: int, username: str = "alice", ip: str = IP) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            svc.auth.login(username, "certainly not it", source_ip=ip, user_agent="t")


def signs_in(svc: Services) -> bool:
    try:
        svc.auth.login("alice", PASSWORD, source_ip=IP, user_agent="t")
    except InvalidCredentials:
        return False
    return True


def test_the_cli_lists_bans_the_server_made(server: Services) -> None:
    fail(server, 3)
    fail(server, 3, username="Ghost")  # no such user: banned all the same

    listed = cli(server, "bans", "list", "--json")
    text = cli(server, "bans", "list")

    assert listed.returncode == 0, listed.stderr
    bans = json.loads(listed.stdout)
    assert [(b["subject"], b["failures"]) for b in bans] == [("user:alice", 3), ("user:ghost", 3)]
    assert bans[0]["reason"] == "3 failed sign-ins within 120 s"
    assert text.returncode == 0, text.stderr
    assert re.search(r"^user:alice\s+\S+ \S+\s+\S+ \S+\s+3 failed sign-ins", text.stdout, re.M)


def test_a_lift_from_the_cli_lets_the_user_in_and_starts_a_fresh_count(
    server: Services,
) -> None:
    fail(server, 3)
    assert not signs_in(server)

    lifted = cli(server, "bans", "lift", "user:Alice")

    assert lifted.returncode == 0, lifted.stderr
    assert lifted.stdout.strip() == "lifted 1 ban(s) on user:Alice; failure count cleared"
    # The server never heard of the lift (no message, no shared memory): the database is
    # enough. The failures behind the ban do not count again, whatever holds the counters.
    fail(server, 2)
    assert signs_in(server)
    assert "no bans in force" in cli(server, "bans", "list").stdout
    [record] = [r for r in audit_records(server) if r.action == Action.BAN_LIFTED]
    assert (record.target, record.actor.startswith("cli:")) == ("user:alice", True)


def test_the_cli_lifts_by_user_or_by_address(server: Services) -> None:
    for n in range(20):
        fail(server, 1, username=f"name{n}", ip="2001:db8:7:7::10")
    fail(server, 3, username="bob")
    assert [b.subject for b in server.regulator.list_bans()] == ["ip:2001:db8:7:7::/64", "user:bob"]

    by_ip = cli(server, "bans", "lift", "--ip", "2001:db8:7:7::99")
    by_user = cli(server, "bans", "lift", "--user", "bob")

    assert (by_ip.returncode, by_user.returncode) == (0, 0), by_ip.stderr + by_user.stderr
    assert server.regulator.list_bans() == []
    assert not server.regulator.banned("bob", "2001:db8:7:7::10")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of SUBJECT, --user NAME or --ip ADDRESS"),
        (("user:alice", "--user", "alice"), "give exactly one of SUBJECT"),
        (("alice",), "ban subject 'alice' is invalid: expected user:NAME, ip:ADDRESS or device:ID"),
    ],
)
def test_the_cli_refuses_a_lift_that_names_no_single_subject(
    server: Services, args: tuple[str, ...], message: str
) -> None:
    fail(server, 3)

    result = cli(server, "bans", "lift", *args)

    assert result.returncode == 2
    assert result.stderr.startswith("error[invalid-")
    assert message in result.stderr
    assert server.regulator.banned("alice", IP)


# The API and the console, in process, on both backends.


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


async def test_the_api_lists_and_lifts_bans(svc: Services, admin: httpx.AsyncClient) -> None:
    fail(svc, 3)
    for n in range(20):
        fail(svc, 1, username=f"n{n}", ip="2001:db8:5:5::1")

    listed = await admin.get("/api/v1/bans")

    assert listed.status_code == 200, listed.text
    assert [(b["subject"], b["failures"]) for b in listed.json()] == [
        ("user:alice", 3),
        ("ip:2001:db8:5:5::/64", 20),
    ]
    lifted = await admin.delete("/api/v1/bans/user:ALICE")
    assert (lifted.status_code, lifted.json()) == (200, {"subject": "user:alice", "lifted": 1})
    # An IPv6 subject carries a slash; the path takes it whole.
    lifted = await admin.delete("/api/v1/bans/ip:2001:db8:5:5::/64")
    assert lifted.json() == {"subject": "ip:2001:db8:5:5::/64", "lifted": 1}
    assert (await admin.get("/api/v1/bans")).json() == []
    assert signs_in(svc)
    lifts = [r for r in audit_records(svc) if r.action == Action.BAN_LIFTED]
    assert [(r.actor, r.target) for r in lifts] == [
        ("user:root", "user:alice"),
        ("user:root", "ip:2001:db8:5:5::/64"),
    ]


async def test_the_api_refuses_bad_subjects_non_admins_and_missing_csrf(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    fail(svc, 3)

    bad = await admin.delete("/api/v1/bans/alice")
    no_csrf = await admin.delete("/api/v1/bans/user:alice", headers={"x-csrf-token": ""})
    svc.directory.add_user("bob", actor="cli:root", password=PASSWORD)
    async with client_for(svc, "bob") as bob:
        not_admin = await bob.delete("/api/v1/bans/user:alice")
        not_admin_list = await bob.get("/api/v1/bans")

    assert (bad.status_code, bad.json()["error"]) == (400, "invalid-ban-subject")
    assert no_csrf.status_code == 403
    assert (not_admin.status_code, not_admin_list.status_code) == (403, 403)
    assert svc.regulator.banned("alice", IP)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def test_the_console_lists_bans_and_lifts_one_with_its_button(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    fail(svc, 3)

    page = await admin.get("/console/bans")

    assert page.status_code == 200, page.text
    assert "<code>user:alice</code>" in page.text
    assert "3 failed sign-ins within 120 s" in page.text
    assert 'href="/console/bans"' in page.text  # the console navigation links here
    lifted = await admin.post(
        "/console/bans/lift", data={"subject": "user:alice", "csrf_token": csrf_of(page.text)}
    )
    assert (lifted.status_code, lifted.headers["location"]) == (
        303,
        "/console/bans?flash=Lifted%20the%20ban%20on%20user%3Aalice.",
    )
    after = await admin.get(lifted.headers["location"])
    assert "Lifted the ban on user:alice." in after.text
    assert "No bans in force." in after.text
    assert signs_in(svc)


async def test_the_console_lift_needs_the_form_token_and_an_admin(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    fail(svc, 3)

    forged = await admin.post("/console/bans/lift", data={"subject": "user:alice"})
    svc.directory.add_user("bob", actor="cli:root", password=PASSWORD)
    async with client_for(svc, "bob") as bob:
        page = await bob.get("/console/bans")
        by_bob = await bob.post(
            "/console/bans/lift", data={"subject": "user:alice", "csrf_token": "x"}
        )

    assert forged.status_code == 403
    assert (page.status_code, by_bob.status_code) == (403, 403)
    assert "user:alice" not in page.text
    assert svc.regulator.banned("alice", IP)
