"""Device certificates at the gateway: an mTLS client (the real curl) reaches an app that
requires a compliant device only with its own, current, unexpired certificate, and a
quarantine applies on the next request."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.gateway import APP_SESSION_COOKIE
from nevertrust.server import MtlsServer, Runtime, mtls_config, uvicorn_config
from tests.soft_device import SoftDevice

from ._gateway import app_token, free_port, upstream_server
from ._support import PASSWORD

APP = "wiki"


@dataclass
class Enrolled:
    device_id: str
    cert: Path
    key: Path


def enrol(svc: Services, user: str, folder: Path, name: str) -> Enrolled:
    soft = SoftDevice()
    token = svc.device_enrolment.create_token(user, actor="admin:root").token
    enrolment = svc.device_enrolment.enrol(token=token, public_key_pem=soft.public_pem, name=name)
    soft.device_id = enrolment.device.device_id
    outcome = svc.device_enrolment.report(soft.device_id, soft.report(at=svc.clock.now()))
    assert outcome.compliant, outcome.reasons
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "device.pem", folder / "device.key"
    cert.write_text(enrolment.certificate.pem)
    key.write_bytes(
        soft.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Enrolled(soft.device_id, cert, key)


@pytest.fixture
def clock() -> FixedClock:
    """Now, not the suite's fixed date: TLS checks certificate dates against the real
    clock, so certificates must be issued at (about) the real time."""
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def svc(any_services: Services, tmp_path: Path) -> Services:
    directory = any_services.directory
    for name in ("alice", "bob"):
        directory.add_user(name, actor="admin:root", password=PASSWORD)
    directory.add_group("staff", actor="admin:root")
    for name in ("alice", "bob"):
        directory.set_membership("staff", name, True, actor="admin:root")
    any_services.settings.gateway.mtls_port = free_port()
    return any_services


@contextlib.asynccontextmanager
async def serving(svc: Services) -> AsyncIterator[tuple[int, Path]]:
    runtime = Runtime(svc)
    main = uvicorn.Server(uvicorn_config(runtime.asgi, host="127.0.0.1", port=free_port()))
    mtls = MtlsServer(mtls_config(runtime), runtime.mtls_certificate)
    tasks = [asyncio.create_task(main.serve()), asyncio.create_task(mtls.serve())]
    while not (main.started and mtls.started):
        await asyncio.sleep(0.01)
        for task in tasks:
            if task.done():
                task.result()
    try:
        yield svc.settings.gateway.mtls_port, svc.settings.home / "run" / "mtls" / "devices-ca.pem"
    finally:
        main.should_exit = mtls.should_exit = True
        await asyncio.gather(*tasks)


async def curl(
    port: int, ca: Path, token: str, device: Enrolled | None, app: str = APP
) -> tuple[int, str]:
    """The real curl, verifying our server certificate and presenting the device's."""
    args = [
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
        "--cacert", str(ca),
        "--resolve", f"{app}.localhost:{port}:127.0.0.1",
        "-H", f"cookie: {APP_SESSION_COOKIE}={token}",
        f"https://{app}.localhost:{port}/hello",
    ]  # fmt: skip
    if device is not None:
        args[1:1] = ["--cert", str(device.cert), "--key", str(device.key)]
    done = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True)
    if done.returncode != 0:
        return -done.returncode, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


async def test_an_app_requiring_a_compliant_device_opens_only_to_the_owners_device(
    svc: Services, tmp_path: Path
) -> None:
    laptop = enrol(svc, "alice", tmp_path / "alice", "alice-laptop")
    bobs = enrol(svc, "bob", tmp_path / "bob", "bob-laptop")
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        svc.catalog.set_rule(APP, "staff", True, actor="admin:root", require_compliant_device=True)
        token = app_token(svc, "alice", APP)
        async with serving(svc) as (port, ca):
            with_device = await curl(port, ca, token, laptop)
            without = await curl(port, ca, token, None)
            someone_elses = await curl(port, ca, token, bobs)

            svc.devices.quarantine(laptop.device_id, actor="admin:root")
            quarantined = await curl(port, ca, token, laptop)

    assert with_device == (200, "hello /hello")
    assert without[0] == 403 and "device-unknown" in without[1]
    assert someone_elses[0] == 403 and "device-unknown" in someone_elses[1]
    assert quarantined[0] == 403 and "device-noncompliant" in quarantined[1]
    assert up.seen_headers[0]["x-nevertrust-user"] == "alice"


async def test_an_expired_device_certificate_is_refused_at_the_handshake(
    svc: Services, clock: FixedClock, tmp_path: Path
) -> None:
    clock.advance(-timedelta(days=3))  # issued three days ago, for 24 hours
    old = enrol(svc, "alice", tmp_path / "old", "old-laptop")
    clock.advance(timedelta(days=3))
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        svc.catalog.set_rule(APP, "staff", True, actor="admin:root")
        token = app_token(svc, "alice", APP)
        async with serving(svc) as (port, ca):
            status, error = await curl(port, ca, token, old)

    assert status < 0, "curl must fail: the server refuses the expired certificate"
    assert up.seen_headers == []


async def test_an_app_added_while_running_is_named_in_the_listeners_certificate(
    svc: Services, tmp_path: Path
) -> None:
    laptop = enrol(svc, "alice", tmp_path / "alice", "alice-laptop")
    async with upstream_server() as up:
        svc.catalog.add_app(APP, upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
        async with serving(svc) as (port, ca):
            svc.catalog.add_app("late", upstream=f"http://127.0.0.1:{up.port}", actor="admin:root")
            svc.catalog.set_rule("late", "staff", True, actor="admin:root")
            token = app_token(svc, "alice", "late")

            async def answered() -> tuple[int, str]:
                for _ in range(100):
                    status, body = await curl(port, ca, token, laptop, app="late")
                    if status > 0:
                        return status, body
                    await asyncio.sleep(0.05)
                return status, body

            status, body = await answered()
    assert (status, body) == (200, "hello /hello"), body
