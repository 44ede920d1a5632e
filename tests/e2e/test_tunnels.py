"""TCP tunnels end to end: the real ``nevertrust up``, the real ``nevertrust connect`` as a
subprocess, the real PostgreSQL on this machine behind an app ``db``, and psycopg.

The person's browser is the e2e Browser (signed in at the portal over HTTP); its last hop
is the command line's own 127.0.0.1 callback, which it reaches with a plain HTTP client.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.e2e.browser import Browser, hidden_fields
from tests.e2e.conftest import NEVERTRUST, Platform, free_port

PASSWORD = "correct horse battery staple"
POSTGRES = "tcp://127.0.0.1:5432"  # the machine's PostgreSQL: trust auth, database test
_LINK = re.compile(r"(http://db\.localhost:\d+/\.nevertrust/cli-login\?\S+)")
_DEADLINE = 60.0  # generous: the machine is shared; nothing below asserts a duration


@dataclass
class Connect:
    """A running ``nevertrust connect``; its merged output, line by line."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    cursor: int = 0
    reader: threading.Thread | None = None

    def wait_for(self, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """The next line (after the previous match) holding ``pattern`` (text or regex)."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + _DEADLINE
        while time.monotonic() < deadline:
            while self.cursor < len(self.seen):
                line = self.seen[self.cursor]
                self.cursor += 1
                if found := regex.search(line):
                    return found
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
        pytest.fail(f"nevertrust connect never printed {regex.pattern!r}; output:\n{self.output}")

    @property
    def output(self) -> str:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return "".join(self.seen)

    def close(self) -> None:
        """Collect the rest of the output and close the pipe (after ``stop``)."""
        if self.reader is not None:
            self.reader.join(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> int:
        """Ctrl-C, as a person would; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"nevertrust connect did not stop on Ctrl-C:\n{self.output}")
        return self.process.returncode


@pytest.fixture
def connects(platform: Platform) -> Iterator[list[Connect]]:
    started: list[Connect] = []
    yield started
    for c in started:
        c.stop()
        c.close()
        assert "Traceback" not in c.output, c.output


def start_connect(platform: Platform, started: list[Connect], port: int) -> Connect:
    # No display and no browser variables: the command must only print the link.
    env = {
        k: v for k, v in platform.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    }
    process = subprocess.Popen(
        [NEVERTRUST, "connect", "db", "--local-port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    c = Connect(process)
    assert process.stdout is not None
    stream = process.stdout

    def pump() -> None:
        for line in stream:
            c.lines.put(line)

    c.reader = threading.Thread(target=pump, daemon=True)
    c.reader.start()
    started.append(c)
    return c


def allow_in_browser(platform: Platform, browser: Browser, link: str, user: str) -> None:
    """Open the printed link as the signed-in person, press Allow, reach the callback."""
    page, _ = browser.go("GET", link)
    assert page.status_code == 200, page.text
    assert f"Allow the command line on this computer to connect to db as {user}?" in page.text
    answer = browser.request(
        "POST",
        platform.app_url("db") + "/.nevertrust/cli-login",
        data={**hidden_fields(page.text), "action": "allow"},
    )
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    port = urlsplit(link).query.split("port=")[1].split("&")[0]
    assert callback.startswith(f"http://127.0.0.1:{port}/callback?code=")
    done = httpx.get(callback, trust_env=False, timeout=15)
    assert done.status_code == 200
    assert "Signed in" in done.text


def pg(port: int) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user="postgres",
        dbname="test",
        sslmode="disable",
        connect_timeout=30,
        autocommit=True,
    )


def wait_until_cut(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Query the open connection until the gateway cuts it (True) or the deadline passes;
    the connection is closed either way."""
    deadline = time.monotonic() + _DEADLINE
    cut = False
    while not cut and time.monotonic() < deadline:
        try:
            conn.execute("select 1")
            time.sleep(0.2)
        except psycopg.OperationalError:
            cut = True
    conn.close()
    return cut


def publish_db(platform: Platform) -> None:
    platform.cli("groups", "add", "dba")
    added = platform.cli("apps", "add", "db", "--upstream", POSTGRES).stdout
    assert "-> tcp://127.0.0.1:5432" in added
    platform.cli("apps", "allow", "db", "--group", "dba")


def signed_in_connect(
    platform: Platform, connects: list[Connect], user: str, *groups: str
) -> tuple[Connect, Browser, int]:
    platform.add_user(user, PASSWORD, *groups)
    browser = platform.browser()
    response, _ = platform.login(browser, user, PASSWORD)
    assert response.status_code == 200, response.text
    port = free_port()
    c = start_connect(platform, connects, port)
    allow_in_browser(platform, browser, c.wait_for(_LINK).group(1), user)
    c.wait_for(f"Signed in as {user}. Forwarding 127.0.0.1:{port} -> db")
    return c, browser, port


@pytest.mark.slow
def test_member_queries_postgres_through_the_tunnel_one_decision_per_connection(
    platform: Platform, connects: list[Connect]
) -> None:
    publish_db(platform)
    c, _, port = signed_in_connect(platform, connects, "alice", "dba")

    with pg(port) as first, pg(port) as second:
        assert first.execute("select 1").fetchone() == (1,)
        assert second.execute("select current_database()").fetchone() == ("test",)
        big = second.execute("select repeat('x', 3000000)").fetchone()
        assert big is not None and len(str(big[0])) == 3_000_000

    def two_tunnels(records: list[dict[str, object]]) -> bool:
        return sum(r["action"] == "pdp:decision:allowed" for r in records) >= 2

    records = platform.audit_records(until=two_tunnels)
    allowed = [r for r in records if r["action"] == "pdp:decision:allowed"]
    assert [(r["actor"], r["target"]) for r in allowed] == [("user:alice", "app:db")] * 2
    assert {r["details"]["method"] for r in allowed} == {"CONNECT"}  # type: ignore[index]

    def two_closed(records: list[dict[str, object]]) -> bool:
        return sum(r["action"] == "gateway:tunnel:closed" for r in records) >= 2

    closed = [
        r
        for r in platform.audit_records(until=two_closed)
        if r["action"] == "gateway:tunnel:closed"
    ]
    # psql's side or PostgreSQL's may hang up first: either way the tunnel ended normally.
    assert {r["reason"] for r in closed} <= {"client", "upstream"}
    assert max(r["details"]["bytes_down"] for r in closed) > 3_000_000  # type: ignore[index]

    assert c.stop() == 0
    assert "stopped" in c.output


@pytest.mark.slow
def test_user_outside_allowed_groups_is_refused_and_told_why(
    platform: Platform, connects: list[Connect]
) -> None:
    publish_db(platform)
    c, _, port = signed_in_connect(platform, connects, "bob")

    with pytest.raises(psycopg.OperationalError):
        pg(port).close()

    c.wait_for(
        "db: access denied by policy: You are not a member of any group allowed to use this "
        "application. [not-in-allowed-group]"
    )
    records = platform.audit_records(
        until=lambda rs: any(r["action"] == "pdp:decision:denied" for r in rs)
    )
    denied = [r for r in records if r["action"] == "pdp:decision:denied"]
    assert [(r["actor"], r["target"], r["reason"]) for r in denied] == [
        ("user:bob", "app:db", "not-in-allowed-group")
    ]


@pytest.mark.slow
def test_revoking_sessions_cuts_an_open_connection_and_asks_to_sign_in_again(
    platform: Platform, connects: list[Connect]
) -> None:
    publish_db(platform)
    c, browser, port = signed_in_connect(platform, connects, "alice", "dba")
    conn = pg(port)
    assert conn.execute("select 1").fetchone() == (1,)

    platform.cli("sessions", "revoke", "--user", "alice")

    assert wait_until_cut(conn), "the open connection outlived the revocation"
    c.wait_for("db: access ended (revoked or policy changed)")

    # A new connection finds the sign-in gone: the command asks for a new one and the
    # connection waits for it instead of failing.
    result: queue.Queue[object] = queue.Queue()

    def query() -> None:
        try:
            with pg(port) as again:
                result.put(again.execute("select 2").fetchone())
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            result.put(exc)

    threading.Thread(target=query, daemon=True).start()
    c.wait_for("your sign-in has ended; sign in again")
    link = c.wait_for(_LINK).group(1)
    form, hops = browser.go("GET", link)
    assert urlsplit(hops[-1].url).path == "/login"  # the portal session went too
    platform.login(browser, "alice", PASSWORD, form=form)
    allow_in_browser(platform, browser, link, "alice")
    assert result.get(timeout=_DEADLINE) == (2,)


def test_connect_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env.update(NEVERTRUST_HOME=str(tmp_path / "home"), NO_COLOR="1")
    result = subprocess.run(
        [NEVERTRUST, "connect", "db", "--local-port", str(free_port()), "--bind", "0.0.0.0"],  # noqa: S104
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "error[invalid-input]: --bind '0.0.0.0' is not a loopback address" in result.stderr
