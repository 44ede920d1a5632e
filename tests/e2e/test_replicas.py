"""Two real server processes on one PostgreSQL and one Redis: revocation reaches both.

The replicas stand behind an imaginary load balancer: both have the same public port, so
they issue the same URLs and assertion audiences, and the test's browser picks which
replica each request goes to. Cookies are kept per host name, as a browser keeps them,
so the app session cookie one replica set is presented to the other, which checks it
against the shared database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.browser import Browser, hidden_fields
from tests.e2e.conftest import NEVERTRUST, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

PASSWORD = "correct horse battery staple"


@dataclass
class BalancedBrowser(Browser):
    """A browser behind the load balancer: URLs name the public port, ``backend`` picks
    the replica that answers."""

    backend: int = 0

    def client(self, host: str) -> httpx.Client:
        client = super().client(host)
        client.base_url = httpx.URL(f"http://127.0.0.1:{self.backend}")
        return client


@dataclass
class Replica:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"{self.name} exited during start-up:\n{self.output}")
                try:
                    response = client.get(
                        f"http://127.0.0.1:{self.port}/healthz", headers={"host": "auth.localhost"}
                    )
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"{self.name} did not become healthy in 30 s:\n{self.output}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str | None:
        """Stop gracefully; a description of what went wrong, or None."""
        process, self.process = self.process, None
        if process is None:
            return None
        crashed = process.poll() is not None
        if not crashed:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return f"{self.name} did not stop within 20 s"
        if crashed or process.returncode not in (0, -signal.SIGTERM) or "Traceback" in self.output:
            return f"{self.name} exited {process.returncode}:\n{self.output}"
        return None


@dataclass
class Cluster:
    public_port: int
    a: Replica
    b: Replica
    cli_env: dict[str, str]
    browsers: list[BalancedBrowser] = field(default_factory=list)

    @property
    def portal(self) -> str:
        return f"http://auth.localhost:{self.public_port}"

    @property
    def whoami(self) -> str:
        return f"http://whoami.localhost:{self.public_port}/"

    def browser(self) -> BalancedBrowser:
        b = BalancedBrowser(self.public_port)
        self.browsers.append(b)
        return b

    def cli(self, *args: str, input: str | None = None) -> str:
        """The CLI from a third home: no control socket to reach, only Redis."""
        result = subprocess.run(
            [NEVERTRUST, *args],
            env=self.cli_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"nevertrust {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def add_admin(self, name: str) -> None:
        self.cli("users", "add", name, "--password-stdin", input=PASSWORD + "\n")
        self.cli("groups", "add-member", "admins", name)

    def sign_in(self, b: BalancedBrowser, user: str, *, on: Replica) -> httpx.Response:
        """Open whoami through ``on``, sign in there, follow the hand-off back to the app."""
        b.backend = on.port
        form, hops = b.go("GET", self.whoami)
        assert urlsplit(hops[-1].url).path == "/login", form.text
        response, _ = b.go(
            "POST",
            self.portal + "/login",
            data={**hidden_fields(form.text), "username": user, "password": PASSWORD},
        )
        return response


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Cluster]:
    public_port, port_a, port_b, demo_port = (free_port() for _ in range(4))
    assert len({public_port, port_a, port_b, demo_port}) == 4
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    base.update(
        NEVERTRUST_DATABASE_URL=postgres_url,
        NEVERTRUST_REDIS_URL=redis_url,
        # Replicas share the master key (it seals the signing keys they all use).
        NEVERTRUST_SECRET_KEY_FILE=str(tmp_path / "shared" / "secret.key"),
        NEVERTRUST_PUBLIC_PORT=str(public_port),
        NEVERTRUST_LOG_LEVEL="warning",
        NO_COLOR="1",
    )

    def env(name: str, **extra: str) -> dict[str, str]:
        return {**base, "NEVERTRUST_HOME": str(tmp_path / name), **extra}

    # A bootstraps the admin group and the whoami demo app (its upstream runs inside A);
    # B is a plain replica that proxies to the same upstream.
    a = Replica(
        "replica A",
        port_a,
        [NEVERTRUST, "up"],
        env("a", NEVERTRUST_PORT=str(port_a), NEVERTRUST_DEMO_PORT=str(demo_port)),
        tmp_path / "a.log",
    )
    b = Replica(
        "replica B",
        port_b,
        [NEVERTRUST, "server"],
        env("b", NEVERTRUST_PORT=str(port_b)),
        tmp_path / "b.log",
    )
    nt = Cluster(public_port, a, b, env("cli"))
    problems: list[str] = []
    try:
        a.start()
        b.start()
        yield nt
    finally:
        for browser in nt.browsers:
            browser.close()
        problems = [p for p in (b.stop(), a.stop()) if p]
    assert not (tmp_path / "cli" / "run" / "control.sock").exists()
    if problems:
        pytest.fail("\n".join(problems))


def signed_in_on_both(nt: Cluster, user: str) -> BalancedBrowser:
    """A user signed in through B whose one app cookie works (and is cached) on A and B."""
    nt.add_admin(user)
    b = nt.browser()
    response = nt.sign_in(b, user, on=nt.b)
    assert response.status_code == 200, response.text
    assert response.json()["user"] == user
    app_host = urlsplit(nt.whoami).netloc
    cookie = b.cookies(app_host)["nt_app_session"]
    for replica in (nt.a, nt.b):
        b.backend = replica.port
        response = b.request("GET", nt.whoami)
        assert response.status_code == 200, f"{replica.name}: {response.text}"
        assert response.json()["user"] == user
    assert b.cookies(app_host)["nt_app_session"] == cookie  # one cookie, both replicas
    return b


def assert_sent_to_sign_in(nt: Cluster, b: BalancedBrowser, replica: Replica) -> None:
    b.backend = replica.port
    response = b.request("GET", nt.whoami)
    assert response.status_code == 302, f"{replica.name} still serves: {response.text[:300]}"
    assert response.headers["location"].startswith(nt.portal + "/authorize?")


def test_a_revocation_through_replica_a_refuses_the_very_next_request_on_replica_b(
    cluster: Cluster,
) -> None:
    nt = cluster
    bob = signed_in_on_both(nt, "bob")
    nt.add_admin("root")
    admin = nt.browser()
    assert nt.sign_in(admin, "root", on=nt.a).status_code == 200
    page, _ = admin.go("GET", nt.portal + "/console/policies")
    token = hidden_fields(page.text)["csrf_token"]

    response = admin.request(
        "POST",
        nt.portal + "/api/v1/sessions/revoke",
        json={"user": "bob"},
        headers={"x-csrf-token": token},
    )

    assert response.status_code == 200, response.text
    assert response.json()["revoked"] >= 2  # the portal session and its app session
    assert_sent_to_sign_in(nt, bob, nt.b)  # no waiting: B's cache heard through Redis
    assert_sent_to_sign_in(nt, bob, nt.a)


def test_users_disable_from_the_cli_refuses_the_very_next_request_on_both_replicas(
    cluster: Cluster,
) -> None:
    nt = cluster
    bob = signed_in_on_both(nt, "bob")

    nt.cli("users", "disable", "bob")

    assert_sent_to_sign_in(nt, bob, nt.b)
    assert_sent_to_sign_in(nt, bob, nt.a)
    # And bob cannot come back through either replica.
    again = nt.browser()
    assert nt.sign_in(again, "bob", on=nt.b).status_code == 401
