"""Helpers the integration tests share: read back what the services wrote, wait, spawn."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

import httpx
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action, AuditEntry, Outcome, SealedRecord
from nevertrust.bus import ChangeEvent
from nevertrust.identity import SessionKind
from nevertrust.store.tables import metadata
from nevertrust.web.api import build_api
from nevertrust.web.csrf import CSRF_COOKIE, CsrfTokens
from nevertrust.web.portal import PortalContext, build_portal

PASSWORD = "correct horse battery"  # a password that passes the policy


def audit_records(svc: Services) -> list[SealedRecord]:
    """Every audit record, oldest first."""
    with svc.uow.read() as uow:
        return list(uow.audit.iterate())


def audit_actions(svc: Services) -> list[str]:
    return [r.action for r in audit_records(svc)]


def changes(svc: Services, *, after: int = 0) -> list[ChangeEvent]:
    """Change-log rows (as events) written after row id ``after``."""
    with svc.uow.read() as uow:
        return [event for _, event in uow.changes.since(after, limit=100_000)]


def last_change_id(svc: Services) -> int:
    with svc.uow.read() as uow:
        return uow.changes.last_id()


def db_state(svc: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for 'nothing was written' comparisons."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with svc.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            state[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return state


def entry(actor: str, n: int = 0) -> AuditEntry:
    return AuditEntry(
        ts=datetime.now(UTC),
        actor=actor,
        action=Action.DECISION_ALLOWED,
        outcome=Outcome.ALLOW,
        target="app:whoami",
        details={"n": n},
    )


def wait_until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.01)
    return True


async def eventually(predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
    """``wait_until`` for coroutines: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        await asyncio.sleep(0.01)
    return True


# A second OS process on the same home and database: what the CLI is to a running server.
_PEER_SCRIPT = """
import sys
from pathlib import Path

from nevertrust.app import build_services
from nevertrust.identity import Passwords
from nevertrust.settings import Settings


def wait_for_go():
    # Tell the parent we are set up, then start when it says so (to overlap its writers).
    print("ready", flush=True)
    sys.stdin.readline()


settings = Settings(home=Path(sys.argv[1]), database_url=sys.argv[2])
svc = build_services(settings, passwords=Passwords(memory_kib=1024, time_cost=1), migrate=False)
try:
    exec(sys.argv[3])
finally:
    svc.close()
"""


def peer_process(svc: Services, code: str) -> subprocess.Popen[str]:
    """Start ``code`` (with ``svc`` bound to fresh services) in another Python process.

    ``code`` may call ``wait_for_go()``: see ``await_ready`` and ``go``.
    """
    settings = svc.settings
    return subprocess.Popen(
        [sys.executable, "-c", _PEER_SCRIPT, str(settings.home), settings.database_url, code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_peer_process(svc: Services, code: str, *, timeout: float = 60) -> str:
    """Run ``code`` in another process to completion; fail with its stderr if it fails."""
    proc = peer_process(svc, code)
    return finish(proc, timeout=timeout)


def await_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != "ready\n":
        finish(proc)
        raise AssertionError(f"peer process said {line!r} instead of ready")


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def finish(proc: subprocess.Popen[str], *, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"peer process failed ({proc.returncode}):\n{err}"
    return out


def portal_client(svc: Services, *, base_url: str | None = None) -> httpx.AsyncClient:
    """A browser on the portal (in process) holding a CSRF cookie, its token in the
    X-CSRF-Token header, signed in as no one. ``base_url`` defaults to the portal URL,
    the origin passkey ceremonies are bound to."""
    portal = build_portal(PortalContext(svc), api=build_api(svc))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal), base_url=base_url or svc.settings.portal_url
    )
    csrf_cookie = CsrfTokens.new_cookie()
    client.cookies.set(CSRF_COOKIE, csrf_cookie)
    client.headers["x-csrf-token"] = CsrfTokens(svc.master_key).token_for(csrf_cookie)
    return client


def sign_in_with_password(svc: Services, client: httpx.AsyncClient, name: str = "alice") -> str:
    """The password step through the service; the cookie goes where the portal puts it
    (``nt_pending`` while a second factor is owed)."""
    issued = svc.auth.login(name, PASSWORD, source_ip="127.0.0.1", user_agent="test")
    cookie = "nt_pending" if issued.record.kind is SessionKind.PENDING else "nt_session"
    client.cookies.set(cookie, issued.token)
    return issued.token


def client_for(svc: Services, username: str | None) -> httpx.AsyncClient:
    """A browser-like client, signed in as ``username``, holding a CSRF cookie."""
    client = portal_client(svc, base_url="http://auth.localhost")
    if username is not None:
        sign_in_with_password(svc, client, username)
    return client


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """The cookies a response sets, by name (each parsed with its attributes)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            found[name] = parsed
    return found
