"""End-to-end fixtures: the real ``nevertrust up`` in a subprocess, driven over HTTP.

Each test gets its own home and ports, so tests run in parallel (xdist) without sharing
state. The server is stopped gracefully at the end; a crash, a non-zero exit or a
traceback in its log fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import Browser, Hop, hidden_fields
from tests.ports import free_port as free_port  # re-exported for the test modules

_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")
_SETUP_LINK = re.compile(r"(http://auth\.localhost:\d+/setup\?token=[\w-]+)")


@dataclass
class Platform:
    """A running ``nevertrust up`` and ways to talk to it."""

    port: int
    demo_port: int
    home: Path
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    process: subprocess.Popen[bytes] | None = None
    browsers: list[Browser] = field(default_factory=list)
    # Where users reach the platform when a proxy stands in front of it (NeverTrust runs
    # with NEVERTRUST_PUBLIC_PORT set to it); None: users talk to ``port`` directly.
    public_port: int | None = None

    # Addresses

    @property
    def user_port(self) -> int:
        """The port browsers and the portal's links use: the proxy's, if there is one."""
        return self.public_port or self.port

    @property
    def portal(self) -> str:
        return f"http://auth.localhost:{self.user_port}"

    def app_url(self, name: str) -> str:
        return f"http://{name}.localhost:{self.user_port}"

    @property
    def database(self) -> Path:
        return self.home / "nevertrust.db"

    # Output

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def setup_link(self) -> str:
        found = _SETUP_LINK.search(self.stdout)
        assert found, f"no setup link in the server's output:\n{self.stdout}"
        return found.group(1)

    # Clients

    def browser(self) -> Browser:
        b = Browser(self.user_port)
        self.browsers.append(b)
        return b

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``nevertrust ARGS`` against this home; with ``check``, a failure fails the test."""
        result = subprocess.run(
            [NEVERTRUST, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"nevertrust {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def add_user(self, name: str, password: str, *groups: str) -> None:
        self.cli("users", "add", name, "--password-stdin", input=password + "\n")
        for group in groups:
            self.cli("groups", "add-member", group, name)

    def login(
        self,
        browser: Browser,
        user: str,
        password: str,
        *,
        form: httpx.Response | None = None,
    ) -> tuple[httpx.Response, list[Hop]]:
        """Sign in through the login form and follow where the portal sends the browser.

        ``form`` is a login page the browser already holds (reached through an app's
        redirect chain, so it carries rd and state); without it the portal's /login is used.
        """
        if form is None:
            form, _ = browser.go("GET", self.portal + "/login")
        assert form.status_code in (200, 400, 401), form.text
        fields = hidden_fields(form.text)
        assert "csrf_token" in fields, form.text
        return browser.go(
            "POST",
            self.portal + "/login",
            data={**fields, "username": user, "password": password},
        )

    def audit_records(
        self, until: Callable[[list[dict[str, Any]]], bool] = lambda _: True, timeout: float = 10
    ) -> list[dict[str, Any]]:
        """The audit log as ``nevertrust audit tail --json`` prints it, once ``until`` holds.

        Gateway decisions are queued and written in batches, so they reach the database a
        few milliseconds after the response: wait for them by reading the table (cheap),
        then ask the CLI once.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with closing(sqlite3.connect(self.database)) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY seq")]
            if until(rows):
                break
            time.sleep(0.1)
        out = self.cli("audit", "tail", "-n", "10000", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    # Lifecycle

    def start(self) -> None:
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                [NEVERTRUST, "up"], env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"nevertrust up exited {self.process.returncode} during start-up\n"
                        f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                    )
                try:
                    response = client.get(
                        f"http://127.0.0.1:{self.port}/healthz",
                        headers={"host": f"auth.localhost:{self.port}"},
                    )
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"nevertrust up did not become healthy in 30 s\nstderr:\n{self.stderr}")

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM); fail if it crashed or would not stop."""
        process, self.process = self.process, None
        if process is None:
            return
        crashed = process.poll() is not None
        if not crashed:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"nevertrust up did not stop within 20 s\nstderr:\n{self.stderr}")
        # uvicorn re-raises the signal it caught once shutdown is complete: -SIGTERM is clean.
        clean = process.returncode in (0, -signal.SIGTERM) and not crashed
        if not clean or "Traceback" in self.stderr:
            pytest.fail(
                f"nevertrust up {'crashed' if crashed else 'stopped'} with exit code "
                f"{process.returncode}\nstderr:\n{self.stderr}"
            )


# Where a test's failure report finds more to show: callables returning (title, text),
# e.g. a proxy's error log. Tests register them through ``diagnose``.
DIAGNOSTICS = pytest.StashKey[list[Callable[[], tuple[str, str]]]]()


def diagnose(item: pytest.Item, source: Callable[[], tuple[str, str]]) -> None:
    """Show ``source()`` (title, text) under a failure of ``item``."""
    item.stash.setdefault(DIAGNOSTICS, []).append(source)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for source in item.stash.get(DIAGNOSTICS, []):
            title, text = source()
            report.sections.append((title, text))
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Each e2e test starts a server and runs the CLI (a fresh Python process) several times;
    # on a loaded two-core CI machine that can outlast the suite's default 120 s timeout.
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300))


def new_platform(
    directory: Path, *, public_port: int | None = None, env: Mapping[str, str] | None = None
) -> Platform:
    """A ``Platform`` (not started) with its home under ``directory`` and free ports.

    ``public_port``: a proxy in front listens there (NeverTrust's links name it, through
    NEVERTRUST_PUBLIC_PORT); ``env``: more settings, e.g. NEVERTRUST_GATEWAY__... values.
    """
    port = free_port()
    demo_port = free_port()
    while demo_port == port:
        demo_port = free_port()
    home = directory / "home"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    environment.update(
        NEVERTRUST_HOME=str(home),
        NEVERTRUST_PORT=str(port),
        NEVERTRUST_DEMO_PORT=str(demo_port),
        NO_COLOR="1",
    )
    if public_port is not None:
        environment["NEVERTRUST_PUBLIC_PORT"] = str(public_port)
    environment.update(env or {})
    return Platform(
        port=port,
        demo_port=demo_port,
        home=home,
        env=environment,
        stdout_path=directory / "server.out",
        stderr_path=directory / "server.err",
        public_port=public_port,
    )


@contextmanager
def running(nt: Platform) -> Iterator[Platform]:
    """Start ``nt``; afterwards close its browsers and stop it (checked)."""
    nt.start()
    try:
        yield nt
    finally:
        for b in nt.browsers:
            b.close()
        nt.stop()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """``nevertrust up`` on a fresh home and free ports; stopped (and checked) afterwards."""
    with running(new_platform(tmp_path)) as nt:
        yield nt
