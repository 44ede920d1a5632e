"""Tunnels from an enrolled device, end to end: the real ``nevertrust up`` with its mTLS
listener, a real agent enrolled and reporting this machine's posture, the real
``nevertrust connect`` presenting the agent's device certificate, the real PostgreSQL
behind an app ``db`` that requires a compliant device, and psycopg.

The person's browser signs in at the portal over plain HTTP (the e2e Browser) and opens
the link the command prints on the mTLS listener with a client that trusts the device
CA and, like a browser, presents no certificate.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg
import pytest

from tests.e2e.browser import hidden_fields
from tests.e2e.conftest import NEVERTRUST, Platform, free_port, new_platform, running
from tests.e2e.test_agent import agent
from tests.e2e.test_tunnels import POSTGRES, Connect, pg, wait_until_cut

PASSWORD = "correct horse battery staple"
_LINK = re.compile(r"(https://db\.localhost:\d+/\.nevertrust/cli-login\?\S+)")


class TlsBrowser:
    """A browser-like client for the platform's hosts on both listeners.

    Like a browser, it verifies https servers (against the device CA, which a device's owner
    trusts), presents no client certificate, and keeps one cookie jar per host name whatever
    the port or scheme (RFC 6265 §8.5: cookies do not isolate by port). The e2e Browser keys
    its jars by host and port, which would lose the sign-in's state cookie when the
    portal sends the browser from the mTLS port back to the app's main-port address.
    """

    def __init__(self, ports: dict[str, int], ca: Path) -> None:
        self._ports = ports  # scheme -> the platform's port for it
        self._context = ssl.create_default_context(cafile=str(ca))
        self._clients: dict[str, httpx.Client] = {}

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        assert host.endswith(".localhost") and parts.port == self._ports[parts.scheme], url
        if host not in self._clients:
            self._clients[host] = httpx.Client(
                verify=self._context, follow_redirects=False, trust_env=False, timeout=15
            )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self._clients[host].request(
            method,
            f"{parts.scheme}://127.0.0.1:{parts.port}{target}",
            headers={"host": parts.netloc},
            extensions={"sni_hostname": host} if parts.scheme == "https" else {},
            **kwargs,  # type: ignore[arg-type]
        )

    def go(self, method: str, url: str, **kwargs: object) -> tuple[httpx.Response, str]:
        """Follow redirects across hosts like a browser; the last response and its URL."""
        for _ in range(10):
            response = self.request(method, url, **kwargs)
            if not response.is_redirect:
                return response, url
            method, url, kwargs = "GET", urljoin(url, response.headers["location"]), {}
        raise AssertionError(f"too many redirects from {url}")

    def login(self, portal: str, user: str) -> None:
        form, _ = self.go("GET", portal + "/login")
        fields = {**hidden_fields(form.text), "username": user, "password": PASSWORD}
        assert self.go("POST", portal + "/login", data=fields)[0].status_code == 200

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def allow(browser: TlsBrowser, link: str, user: str) -> None:
    """Open the printed https link as the signed-in person, press Allow, reach the callback."""
    # The sign-in goes through the portal and, as the server builds its return address
    # from the app's configured (main port) URL, the page may end up there: either way
    # the code it yields is redeemed by the command line over mTLS.
    page, url = browser.go("GET", link)
    assert page.status_code == 200, page.text
    assert f"connect to db as {user}?" in page.text
    answer = browser.request(
        "POST",
        url.split("?", 1)[0],
        data={**hidden_fields(page.text), "action": "allow"},
    )
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert callback.startswith("http://127.0.0.1:")
    done = httpx.get(callback, trust_env=False, timeout=15)
    assert done.status_code == 200 and "Signed in" in done.text


@contextmanager
def connect(
    tmp_path: Path, agent_home: Path, mtls_port: int, port: int, *flags: str
) -> Iterator[Connect]:
    """``nevertrust connect db`` as the device's owner runs it: the agent's home, no server's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEVERTRUST_") and k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    }
    env.update(
        NEVERTRUST_HOME=str(tmp_path / "laptop"),
        NEVERTRUST_AGENT_HOME=str(agent_home),
        NO_COLOR="1",
    )
    server = f"https://auth.localhost:{mtls_port}"
    process = subprocess.Popen(
        [NEVERTRUST, "connect", "db", "--local-port", str(port), "--server", server, *flags],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    c = Connect(process)
    stream = process.stdout
    assert stream is not None

    def pump() -> None:
        for line in stream:
            c.lines.put(line)

    c.reader = threading.Thread(target=pump, daemon=True)
    c.reader.start()
    try:
        yield c
    finally:
        c.stop()
        c.close()
        assert "Traceback" not in c.output, c.output


def signed_in(c: Connect, browser: TlsBrowser, user: str, port: int, device: str | None) -> None:
    if device is not None:
        c.wait_for(f"Using device {device}")
    else:
        c.wait_for("No device certificate presented")
    allow(browser, c.wait_for(_LINK).group(1), user)
    c.wait_for(f"Signed in as {user}. Forwarding 127.0.0.1:{port} -> db")


def enrolled_platform(nt: Platform, agent_home: Path) -> str:
    """alice in dba, ``db`` requiring a compliant device, this machine enrolled: its id."""
    nt.add_user("alice", PASSWORD)
    nt.cli("groups", "add", "dba")
    nt.cli("groups", "add-member", "dba", "alice")
    # This test machine has no disk encryption: judge it by what it can show.
    nt.cli("devices", "policy", "set", "linux", "--no-require-encryption",
           "--max-patch-age", "3650")  # fmt: skip
    nt.cli("apps", "add", "db", "--upstream", POSTGRES)
    nt.cli("apps", "allow", "db", "--group", "dba", "--require-compliant-device")
    token = nt.cli("devices", "token", "--user", "alice").stdout.strip()
    agent(nt, agent_home, "enroll", "--server", nt.portal, "--token", token)
    reported = agent(nt, agent_home, "report")
    assert "state: compliant" in reported.stdout, reported.stdout
    return str(json.loads(agent(nt, agent_home, "status", "--json").stdout)["device_id"])


@pytest.mark.slow
def test_tunnel_from_a_compliant_device_works_until_the_device_is_quarantined(
    tmp_path: Path,
) -> None:
    mtls_port = free_port()
    nt = new_platform(tmp_path, env={"NEVERTRUST_GATEWAY__MTLS_PORT": str(mtls_port)})
    agent_home = tmp_path / "agent"
    with running(nt):
        device_id = enrolled_platform(nt, agent_home)
        # The mTLS listener's server certificate names the app hosts known when it starts
        # (and OpenSSL does not match *.localhost, a wildcard over a single label): restart
        # so that it names db.localhost.
        nt.stop()
        nt.start()
        ca = nt.home / "run" / "mtls" / "devices-ca.pem"
        browser = TlsBrowser({"http": nt.port, "https": mtls_port}, ca)
        browser.login(nt.portal, "alice")
        try:
            # Without the device: signed in, but every connection is refused by policy.
            port = free_port()
            with connect(tmp_path, agent_home, mtls_port, port, "--no-device") as c:
                signed_in(c, browser, "alice", port, None)
                with pytest.raises(psycopg.OperationalError):
                    pg(port).close()
                c.wait_for(
                    re.compile(
                        r"db: access denied by policy \(this connection presented no device"
                        r".*\[device-unknown\]"
                    )
                )
            denied = nt.audit_records(
                until=lambda rs: any(r["action"] == "pdp:decision:denied" for r in rs)
            )
            assert [
                (r["actor"], r["target"], r["reason"])
                for r in denied
                if r["action"] == "pdp:decision:denied"
            ] == [("user:alice", "app:db", "device-unknown")]

            port = free_port()
            with connect(tmp_path, agent_home, mtls_port, port) as c:
                signed_in(c, browser, "alice", port, device_id)
                conn = pg(port)
                assert conn.execute("select 1").fetchone() == (1,)

                nt.cli("devices", "quarantine", device_id)
                assert wait_until_cut(conn), "the open connection outlived the quarantine"
                c.wait_for("db: access ended (revoked or policy changed)")
        finally:
            browser.close()
