"""Real nginx and Caddy in front of a real upstream, for the forward-auth end-to-end tests.

The proxies run as non-daemons from temporary directories on free loopback ports, with the
site configuration rendered from the templates beside this module: the very text
docs/forward-auth.md shows, with the doc's addresses swapped for the test's (see
``render``). The upstream echoes every request it receives as JSON and keeps a record, so a
test can say what reached the application, and what never did.

Clients connect to 127.0.0.1 (or another loopback address, to play an untrusted peer) and
set Host, since glibc does not resolve ``*.localhost``. ``raw_request`` sends bytes exactly
as given, for what httpx would tidy up: dot segments, duplicate Host headers, absolute-form
request targets.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.browser import Browser

__all__ = [
    "CADDY",
    "NGINX",
    "TEMPLATES",
    "Caddy",
    "EchoUpstream",
    "Nginx",
    "RawResponse",
    "Seen",
    "SourceBrowser",
    "raw_request",
    "render",
    "require_binary",
]

TEMPLATES = Path(__file__).parent
NGINX = "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def require_binary(path: str, package: str) -> None:
    """Skip (locally) or fail (CI) when a proxy binary is missing."""
    if Path(path).exists():
        return
    message = f"{path} not found (apt-get install {package})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and NEVERTRUST_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


def render(template: str, values: dict[str, str]) -> str:
    """The template file's text with every ``{{NAME}}`` replaced; every name must be given."""
    text = (TEMPLATES / template).read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - values.keys())
    assert not missing, f"{template}: no value for {missing}"
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited {process.returncode} at start-up:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"{what} did not listen on {port} within 20 s:\n{_tail(log)}")


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return text[-limit:]


def _stop(process: subprocess.Popen[bytes] | None, what: str) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{what} did not stop within 10 s")


# The upstream


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    target: str  # the request target exactly as sent on the wire
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the proxies' upstream pools expect
    server: _EchoServer

    def _echo(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        seen = Seen(self.command, self.path, list(self.headers.items()))
        self.server.seen.append(seen)
        body = json.dumps(
            {"method": seen.method, "target": seen.target, "headers": seen.headers}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass  # the record is in ``seen``


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[Seen]


class EchoUpstream:
    """The application behind the proxy: answers every request with what it received."""

    def __init__(self) -> None:
        self._server = _EchoServer(("127.0.0.1", 0), _Echo)
        self._server.seen = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[Seen]:
        return self._server.seen

    def start(self) -> EchoUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# The proxies


@dataclass
class Nginx:
    """A non-daemon nginx in ``directory`` serving ``site`` (an http-level config)."""

    directory: Path
    site: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def start(self) -> Nginx:
        require_binary(NGINX, "nginx-light")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "site.conf").write_text(self.site)
        main = self.directory / "nginx.conf"
        main.write_text(render("nginx-main.conf", {"DIR": str(self.directory)}))
        command = [NGINX, "-p", str(self.directory), "-c", str(main), "-e", str(self.error_log)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            pytest.fail(f"nginx -t refused the configuration:\n{checked.stderr}\n{self.site}")
        out = (self.directory / "stderr.log").open("ab")
        with out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        wait_listening(self.port, self.process, "nginx", self.error_log)
        return self

    def logs(self) -> str:
        return _tail(self.error_log) + _tail(self.directory / "stderr.log")

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process, "nginx")


@dataclass
class Caddy:
    """``caddy run`` in ``directory`` with ``site`` under test-only global options."""

    directory: Path
    site: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "caddy.log"

    def start(self) -> Caddy:
        require_binary(CADDY, "caddy")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "Caddyfile"
        options = render("caddy-global.Caddyfile", {"DIR": str(self.directory)})
        config.write_text(options + self.site)
        # Caddy keeps state under $HOME / $XDG_*: keep it in the temporary directory.
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.directory),
            "XDG_DATA_HOME": str(self.directory / "data"),
            "XDG_CONFIG_HOME": str(self.directory / "config"),
        }
        command = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env
            )
        wait_listening(self.port, self.process, "caddy", self.log)
        return self

    def logs(self) -> str:
        return _tail(self.log)

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process, "caddy")


# Clients


@dataclass
class SourceBrowser(Browser):
    """A ``Browser`` whose connections come from ``source`` (a loopback address)."""

    source: str = "127.0.0.1"

    def client(self, host: str) -> httpx.Client:
        if host not in self.clients:
            self.clients[host] = httpx.Client(
                base_url=f"http://127.0.0.1:{self.port}",
                headers={"host": host},
                follow_redirects=False,
                trust_env=False,
                timeout=15,
                transport=httpx.HTTPTransport(local_address=self.source),
            )
        return self.clients[host]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def raw_request(port: int, request: bytes, *, source: str = "127.0.0.1") -> RawResponse:
    """Send ``request`` byte for byte (it should ask for ``Connection: close``) and read
    the answer to the end of the connection."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=15, source_address=(source, 0)
    ) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/"), f"not an HTTP response: {raw[:200]!r}"
    headers = [tuple(s.strip() for s in line.split(":", 1)) for line in lines[1:] if ":" in line]
    response = RawResponse(int(lines[0].split()[1]), headers, body)  # type: ignore[arg-type]
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response = RawResponse(response.status, response.headers, _dechunk(body))
    return response


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)
