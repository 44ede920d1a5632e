"""The real platform for load benchmarks (not a benchmark itself: run_all skips `_` files).

Shared by gateway.py and forward_auth.py: the subprocesses they start and stop, ``nevertrust
up`` in a throw-away home, the tiny ``echo`` upstream, and signing a user in over HTTP
exactly like a browser does, to get a real ``nt_app_session`` cookie for an app host.

Run as a script only to serve the echo upstream: ``_platform.py --serve-echo FD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import html
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httpx

__all__ = [
    "BASE_DOMAIN",
    "ECHO_APP",
    "ECHO_BODY",
    "LOOPBACK",
    "Browser",
    "Platform",
    "Procs",
    "app_session",
    "die_with_parent",
    "free_port_pair",
    "free_ports",
    "nevertrust_exe",
    "platform_env",
    "start_echo",
    "start_platform",
    "tail",
    "wait_listening",
]

LOOPBACK = "127.0.0.1"
BASE_DOMAIN = "localhost"
USER = "bench"
PASSWORD = "bench-password-not-secret"
ECHO_APP = "echo"
DEMO_APP = "whoami"
ECHO_BODY = b"ok"


# Processes


@dataclass
class Procs:
    """Every subprocess we start, so that ``stop_all`` can end them whatever happened."""

    items: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def add(self, name: str, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.items.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
        """Stop one of ours (SIGTERM, then SIGKILL) and forget it."""
        self.items = [(n, p) for n, p in self.items if p is not proc]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop_all(self) -> None:
        for _name, proc in reversed(self.items):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in reversed(self.items):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"bench: {name} ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(timeout=5)
        self.items.clear()


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the bench dies without cleaning up
    (SIGKILL, crash). Linux only; elsewhere the finally blocks have to do."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held together while chosen)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port_pair() -> int:
    """A port P with P and P+1 free on loopback (the platform and its demo upstream)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((LOOPBACK, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((LOOPBACK, port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free pair of loopback ports found")


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Until something accepts TCP connections on ``port`` (or ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout:.0f}s")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def nevertrust_exe() -> str:
    beside = Path(sys.executable).parent / "nevertrust"
    found = str(beside) if beside.exists() else shutil.which("nevertrust")
    if found is None:
        raise RuntimeError("cannot find the nevertrust command (run with .venv/bin/python)")
    return found


# The echo upstream: a raw asyncio HTTP/1.1 server (keep-alive, pipelining, requests with
# small bodies). It is deliberately as cheap as possible, so "direct" measures the load
# generator and the loopback, and the gap to the gateway is the gateway's own cost.

_ECHO_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
    len(ECHO_BODY),
    ECHO_BODY,
)
_ECHO_UNSUPPORTED = (
    b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_CONN_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class _EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > 65536:
                    transport.close()
                return
            head = self._buffer[: end + 2]
            if _CHUNKED.search(head):
                transport.write(_ECHO_UNSUPPORTED)
                transport.close()
                return
            match = _CONTENT_LENGTH.search(head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            transport.write(_ECHO_RESPONSE)
            if _CONN_CLOSE.search(head):
                transport.close()
                return


async def _serve_echo(ready_fd: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, LOOPBACK, 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    os.write(ready_fd, f"{port}\n".encode())
    os.close(ready_fd)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _run_echo_server(ready_fd: int) -> None:
    try:
        import uvloop  # optional speed-up; uvicorn uses it too
    except ImportError:
        asyncio.run(_serve_echo(ready_fd))
    else:
        uvloop.run(_serve_echo(ready_fd))


def start_echo(procs: Procs) -> tuple[int, int]:
    """Start the echo upstream in its own process; returns its port and pid."""
    read_fd, write_fd = os.pipe()
    try:
        proc = procs.add(
            "echo upstream",
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve-echo", str(write_fd)],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            ),
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        readable, _, _ = select.select([ready], [], [], 30)
        # The child writes its port in one go, then closes; EOF means it died.
        line = ready.readline().strip() if readable else b""
    if not line or proc.poll() is not None:
        raise RuntimeError("echo upstream failed to start")
    return int(line), proc.pid


# The platform


@dataclass
class Platform:
    """One ``nevertrust up`` in a temporary home; ``env`` also configures the CLI."""

    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    def host(self, app: str) -> str:
        return f"{app}.{BASE_DOMAIN}:{self.port}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [nevertrust_exe(), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"nevertrust {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the platform died during the run:\n{tail(self.log)}")


def platform_env(home: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    # Start from a clean slate: an outer NEVERTRUST_* (say, a PostgreSQL URL) must not
    # leak into the benchmark.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env.update(
        {
            "NEVERTRUST_HOME": str(home),
            "NEVERTRUST_PORT": str(port),
            "NEVERTRUST_BIND": LOOPBACK,
            "NEVERTRUST_BASE_DOMAIN": BASE_DOMAIN,
            "NEVERTRUST_LOG_LEVEL": "warning",
            **(extra or {}),
        }
    )
    return env


def _wait_healthy(platform: Platform, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if platform.proc.poll() is not None:
                raise RuntimeError(
                    f"nevertrust up exited with {platform.proc.returncode}:\n{tail(platform.log)}"
                )
            try:
                response = client.get(
                    f"http://{LOOPBACK}:{platform.port}/healthz",
                    headers={"host": f"auth.{BASE_DOMAIN}:{platform.port}"},
                )
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"platform not healthy after {timeout:.0f}s:\n{tail(platform.log)}")


def start_platform(
    procs: Procs,
    tmp: Path,
    *,
    extra_env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Platform:
    """``nevertrust up`` (or ``command``, given the same environment) in ``tmp/home``,
    on a free port P (its demo ``whoami`` upstream takes P+1); returns once healthy."""
    port = free_port_pair()
    env = platform_env(tmp / "home", port, extra_env)
    log = tmp / "platform.log"
    with log.open("wb") as log_file:
        proc = procs.add(
            "nevertrust up",
            subprocess.Popen(
                command or [nevertrust_exe(), "up"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            ),
        )
    platform = Platform(port, env, proc, log)
    _wait_healthy(platform, timeout=60)
    return platform


# Signing in, like a browser


class Browser:
    """Per-host httpx clients on loopback; the Host header picks the virtual host.

    Each host keeps its own cookie jar, which is what host-only cookies mean in a browser.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._clients: dict[str, httpx.Client] = {}

    def client(self, host: str) -> httpx.Client:
        if host not in self._clients:
            self._clients[host] = httpx.Client(
                base_url=f"http://{LOOPBACK}:{self.port}",
                headers={"host": host, "user-agent": "nevertrust-bench"},
                follow_redirects=False,
                trust_env=False,
                timeout=15,
            )
        return self._clients[host]

    def host(self, name: str) -> str:
        return f"{name}.{BASE_DOMAIN}:{self.port}"

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def _resolve(self, location: str, current: str) -> tuple[str, str]:
        parts = urlsplit(location)
        host = current
        if parts.netloc:
            hostname = (parts.hostname or "").lower()
            if parts.port != self.port or not (
                hostname == BASE_DOMAIN or hostname.endswith("." + BASE_DOMAIN)
            ):
                raise RuntimeError(f"refusing to follow a redirect off the platform: {location}")
            host = parts.netloc.lower()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return host, target

    def navigate(
        self,
        host: str,
        target: str,
        *,
        method: str = "GET",
        data: dict[str, str] | None = None,
        max_hops: int = 10,
    ) -> tuple[str, httpx.Response]:
        """Request and follow redirects across hosts; returns the final host and response."""
        for _ in range(max_hops):
            response = self.client(host).request(method, target, data=data)
            if response.status_code not in (301, 302, 303, 307, 308):
                return host, response
            host, target = self._resolve(response.headers["location"], host)
            method, data = "GET", None
        raise RuntimeError(f"too many redirects from {host}{target}")

    def sign_in(self, app: str) -> None:
        """First sign-in: app -> portal login form -> POST /login -> back to the app."""
        host, page = self.navigate(self.host(app), "/")
        if page.status_code != 200 or 'action="/login"' not in page.text:
            raise RuntimeError(f"expected the login form, got {page.status_code} from {host}")
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
        for name in ("csrf_token", "rd", "state"):
            if name not in fields:
                raise RuntimeError(f"login form lacks the {name} field")
        if "nt_csrf" not in self.client(host).cookies:
            raise RuntimeError("portal did not set the nt_csrf cookie")
        form = {
            "csrf_token": html.unescape(fields["csrf_token"]),
            "rd": html.unescape(fields["rd"]),
            "state": html.unescape(fields["state"]),
            "username": USER,
            "password": PASSWORD,
        }
        host, done = self.navigate(host, "/login", method="POST", data=form)
        if host != self.host(app) or done.status_code != 200:
            raise RuntimeError(f"sign-in ended at {host} with {done.status_code}")

    def hand_off(self, app: str) -> str:
        """Already signed in at the portal: visit another app; returns its session cookie."""
        host, done = self.navigate(self.host(app), "/")
        if host != self.host(app) or done.status_code != 200:
            raise RuntimeError(f"hand-off to {app} ended at {host} with {done.status_code}")
        cookie = self.client(host).cookies.get("nt_app_session")
        if not cookie:
            raise RuntimeError(f"no nt_app_session cookie for {app}")
        return str(cookie)


def app_session(platform: Platform, app: str, upstream: str) -> str:
    """Publish ``app`` (upstream URL ``upstream``) for group ``admins``, add the user
    ``bench`` to it, sign in like a browser (login on ``whoami``, then the single-sign-on
    hand-off to ``app``) and return the ``nt_app_session`` cookie for ``app``'s host."""
    platform.cli("users", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    platform.cli("groups", "add-member", "admins", USER)
    platform.cli("apps", "add", app, "--upstream", upstream)
    platform.cli("apps", "allow", app, "--group", "admins")
    browser = Browser(platform.port)
    try:
        browser.sign_in(DEMO_APP)
        return browser.hand_off(app)
    finally:
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-echo":
        _run_echo_server(int(sys.argv[2]))
    else:
        sys.exit("usage: _platform.py --serve-echo FD (started by the benchmarks)")
