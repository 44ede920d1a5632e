"""Signing-key rotation on SQLite and PostgreSQL: replicas racing to rotate, a rotation by
another process reaching the gateway's signer, the REST API, the console and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import jwt

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.gateway import AssertionSigner, verify_assertion
from nevertrust.gateway.models import KeyState
from nevertrust.gateway.signing import SigningKeyRing
from nevertrust.store.feed import ChangeFeedWatcher

from ._support import audit_records, client_for, eventually

HOUR = timedelta(hours=1)
_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")


def jwks_kids(svc: Services) -> list[str]:
    return [k["kid"] for k in svc.keys.jwks()["keys"]]


def test_replicas_racing_to_rotate_a_due_key_rotate_it_once(
    any_services: Services, open_peer: Callable[[], Services], clock: FixedClock
) -> None:
    first = any_services.keys.active().kid
    clock.advance(timedelta(days=31))
    replicas = [any_services, open_peer(), open_peer(), open_peer()]
    start = threading.Barrier(len(replicas))
    results: list[bool] = []

    def rotate(svc: Services) -> None:
        start.wait()
        results.append(svc.keys.rotate_if_due(max_age=timedelta(days=30), overlap=HOUR))

    threads = [threading.Thread(target=rotate, args=(svc,)) for svc in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(results) == [False, False, False, True]
    views = any_services.keys.list()
    assert [v.state for v in views] == [KeyState.RETIRING, KeyState.ACTIVE]
    assert views[0].kid == first
    # Every replica now signs with the same key.
    assert {svc.keys.active().kid for svc in replicas} == {views[1].kid}
    rotated = [r for r in audit_records(any_services) if r.action == Action.SIGNING_KEY_ROTATED]
    assert len(rotated) == 1


async def test_a_rotation_by_another_process_reaches_the_signer_through_the_change_feed(
    any_services: Services, peer: Services
) -> None:
    ring = SigningKeyRing(load=any_services.keys.active, issuer="x", ttl_seconds=60)
    any_services.bus.subscribe(ring.on_event)
    watcher = ChangeFeedWatcher(db=any_services.db, uow=any_services.uow,
                                publish=any_services.bus.publish)  # fmt: skip
    watcher.start_position()
    first = ring.kid

    rotation = await asyncio.to_thread(peer.keys.rotate, actor="cli:root", overlap=HOUR)
    assert ring.kid == first  # nothing read storage yet: signing stays storage-free
    await watcher.sync()  # what the control socket asks for after a CLI change

    assert await eventually(lambda: ring.kid == rotation.active.kid)
    assert jwks_kids(any_services) == [rotation.active.kid, first]


async def test_api_lists_rotates_and_retires_keys_for_admins(admin_and_alice: Services) -> None:
    svc = admin_and_alice
    old = svc.keys.active().kid
    async with client_for(svc, "root") as root:
        listed = await root.get("/api/v1/signing-keys")
        assert listed.status_code == 200
        assert [(k["kid"], k["state"], k["retired_at"]) for k in listed.json()] == [
            (old, "active", None)
        ]

        rotated = await root.post("/api/v1/signing-keys/rotate", json={"overlap_minutes": 30})
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["active"]["kid"]
        [replaced] = rotated.json()["replaced"]
        assert (replaced["kid"], replaced["state"]) == (old, "retiring")
        assert svc.keys.active().kid == new

        refused = await root.post(f"/api/v1/signing-keys/{new}/retire")
        assert refused.status_code == 409
        assert refused.json()["error"] == "signing-key-in-use"
        assert "rotate first" in refused.json()["detail"]
        missing = await root.post("/api/v1/signing-keys/nope/retire")
        assert (missing.status_code, missing.json()["error"]) == (404, "unknown-signing-key")

        retired = await root.post(f"/api/v1/signing-keys/{old}/retire")
        assert (retired.status_code, retired.json()["state"]) == (200, "retired")
        jwks = await root.get("/.well-known/jwks.json")
        assert [k["kid"] for k in jwks.json()["keys"]] == [new]
        assert jwks.headers["cache-control"] == "public, max-age=300"

        # Default overlap: the setting (60 minutes).
        again = await root.post("/api/v1/signing-keys/rotate")
        assert again.status_code == 200
        [replaced] = again.json()["replaced"]
        assert replaced["kid"] == new

    actors = {
        (r.action, r.actor)
        for r in audit_records(svc)
        if r.action in (Action.SIGNING_KEY_ROTATED, Action.SIGNING_KEY_RETIRED)
    }
    assert actors == {
        (Action.SIGNING_KEY_ROTATED, "user:root"),
        (Action.SIGNING_KEY_RETIRED, "user:root"),
    }


async def test_api_refuses_non_admins_and_cross_site_posts(admin_and_alice: Services) -> None:
    svc = admin_and_alice
    before = svc.keys.active().kid
    async with client_for(svc, "alice") as alice:
        assert (await alice.get("/api/v1/signing-keys")).status_code == 403
        assert (await alice.post("/api/v1/signing-keys/rotate")).status_code == 403
    async with client_for(svc, "root") as root:
        del root.headers["x-csrf-token"]
        response = await root.post("/api/v1/signing-keys/rotate")
        assert (response.status_code, response.json()["error"]) == (403, "csrf-failed")
    assert [k.kid for k in svc.keys.list()] == [before]


def _csrf(page: httpx.Response) -> str:
    marker = 'name="csrf_token" value="'
    return page.text.split(marker, 1)[1].split('"', 1)[0]


async def test_console_lists_keys_and_rotates_with_a_csrf_form(
    admin_and_alice: Services, clock: FixedClock
) -> None:
    svc = admin_and_alice
    old = svc.keys.active().kid
    clock.advance(HOUR)
    async with client_for(svc, "root") as root:
        page = await root.get("/console/signing-keys")
        assert page.status_code == 200
        assert old in page.text and "active" in page.text
        assert 'href="/console/signing-keys"' in page.text  # in the navigation

        forged = await root.post("/console/signing-keys/rotate", data={"csrf_token": "x"})
        assert forged.status_code == 403
        assert svc.keys.active().kid == old

        done = await root.post("/console/signing-keys/rotate", data={"csrf_token": _csrf(page)})
        assert done.status_code == 303
        new = svc.keys.active().kid
        assert new != old
        shown = await root.get(done.headers["location"])
        assert f"Rotated: {new} signs from now on" in shown.text
        table = shown.text.split("<tbody>", 1)[1]
        assert table.index(new) < table.index(old)  # newest first

    async with client_for(svc, "alice") as alice:
        assert (await alice.get("/console/signing-keys")).status_code == 403


def cli(svc: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_HOME"] = str(svc.settings.home)
    if svc.settings.database_url:
        env["NEVERTRUST_DATABASE_URL"] = svc.settings.database_url
    return subprocess.run(
        [NEVERTRUST, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_lists_rotates_and_retires(any_services: Services) -> None:
    svc = any_services
    old = svc.keys.active().kid

    rotated = cli(svc, "signing-keys", "rotate", "--overlap", "30m")
    assert rotated.returncode == 0, rotated.stderr
    new = svc.keys.active().kid
    assert rotated.stdout.startswith(f"rotated: {new} is the active signing key;")
    assert f"{old} leaves the JWKS at" in rotated.stdout

    listed = json.loads(cli(svc, "signing-keys", "list", "--json").stdout)
    assert [(k["kid"], k["state"]) for k in listed] == [(old, "retiring"), (new, "active")]
    assert listed[0]["retired_at"] is not None
    table = cli(svc, "signing-keys", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["KID", "STATE", "CREATED"]

    refused = cli(svc, "signing-keys", "retire", new)
    assert refused.returncode == 4
    assert refused.stderr.startswith("error[signing-key-in-use]: ")
    assert "rotate first" in refused.stderr
    bad = cli(svc, "signing-keys", "rotate", "--overlap", "soon")
    assert (bad.returncode, bad.stderr.split("]")[0]) == (2, "error[invalid-duration")

    retired = cli(svc, "signing-keys", "retire", old)
    assert retired.returncode == 0, retired.stderr
    assert retired.stdout.startswith(f"retired {old}: no longer in the JWKS")
    listed = json.loads(cli(svc, "signing-keys", "list", "--json").stdout)
    assert [(k["kid"], k["state"]) for k in listed] == [(old, "retired"), (new, "active")]
    [actor] = [r.actor for r in audit_records(svc) if r.action == Action.SIGNING_KEY_RETIRED]
    assert actor.startswith("cli:")


def test_assertions_signed_before_a_rotation_verify_during_the_overlap(
    any_services: Services, clock: FixedClock
) -> None:
    """What an upstream sees: an assertion from before the rotation and one from after
    both verify against the JWKS, until the old key's overlap ends."""
    svc = any_services

    def token() -> str:
        return AssertionSigner(key=svc.keys.active(), issuer="i", ttl_seconds=3600).sign(
            audience="a", subject="1", name="n", groups=[], email="", auth_methods=[],
            auth_time=clock.now(), now=clock.now(),
        )  # fmt: skip

    before = token()
    svc.keys.rotate(actor="user:root", overlap=HOUR)
    after = token()
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]
    for t in (before, after):
        verify_assertion(t, jwks=svc.keys.jwks(), expected_issuer="i", expected_audience="a",
                         now=clock.now())  # fmt: skip
    with svc.uow.read() as uow:
        announced = [e for _, e in uow.changes.since(0) if e.topic is Topic.SIGNING_KEY]
    assert announced[-1] == ChangeEvent(Topic.SIGNING_KEY, jwt.get_unverified_header(after)["kid"])
