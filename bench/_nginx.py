"""nginx in front of forward-auth servers, for the benchmarks (not a benchmark itself).

One non-daemon nginx with its own temporary prefix and config serves every nginx setup of a
run on its own loopback port, so the floor and the forward-auth setups share one binary,
one worker and one configuration style.

Why the auth setups answer with ``empty_gif`` rather than ``return 200``: ``return`` runs in
nginx's rewrite phase, *before* the access phase where ``auth_request`` asks, so
``location / { auth_request ...; return 200; }`` answers 200 without ever asking (checked
against nginx 1.22: an auth server that always says 401 still gets 200s through). Like
``return``, ``empty_gif`` answers from memory with no file or upstream, but in the content
phase, after the access check. The ``nginx_empty_gif`` setup measures it without auth, so
the difference between the two floors is visible.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _platform import LOOPBACK, Procs, die_with_parent, free_ports, wait_listening

__all__ = ["NGINX", "AuthBackend", "Nginx", "nginx_version", "start_nginx"]

NGINX = "/usr/sbin/nginx"
AUTH_PATH = "/.nevertrust/authz/auth-request"


@dataclass(frozen=True)
class AuthBackend:
    """A forward-auth server nginx asks, under a setup name."""

    setup: str
    port: int


@dataclass(frozen=True)
class Nginx:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]  # setup name -> the port nginx serves it on
    config: str
    error_log: Path

    def url(self, setup: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[setup]}/"


def nginx_version(binary: str = NGINX) -> str:
    result = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/(\S+)", result.stderr + result.stdout)
    return found.group(1) if found else "unknown"


def _auth_server(port: int, upstream: str) -> str:
    # The allowed path copies NeverTrust's identity header onto the answer (a real site
    # would put it on the proxied request) and the sign-in Location onto a 401, as an
    # Authelia-style nginx site does. add_header skips empty values, so a 200 carries no
    # Location and the toy's answers carry no user.
    return f"""
    server {{
        listen {LOOPBACK}:{port};
        location / {{
            auth_request /.bench-auth;
            auth_request_set $nt_user $upstream_http_x_nevertrust_user;
            auth_request_set $nt_location $upstream_http_location;
            add_header X-NeverTrust-User $nt_user;
            add_header Location $nt_location always;
            empty_gif;
        }}
        location = /.bench-auth {{
            internal;
            proxy_pass http://{upstream}{AUTH_PATH};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}"""


def render_config(
    prefix: Path, *, workers: str, floors: dict[str, int], auth: dict[AuthBackend, int]
) -> str:
    """``floors``: setup -> port for the two floors (``return 200`` and ``empty_gif``);
    ``auth``: backend -> port nginx serves that auth setup on."""
    upstreams = "".join(
        f"""
    upstream {backend.setup} {{
        server {LOOPBACK}:{backend.port};
        keepalive 64;
    }}"""
        for backend in auth
    )
    floor_servers = "".join(
        f"""
    server {{
        listen {LOOPBACK}:{port};
        location / {{ {"return 200" if setup == "nginx_return_200" else "empty_gif"}; }}
    }}"""
        for setup, port in floors.items()
    )
    auth_servers = "".join(_auth_server(port, backend.setup) for backend, port in auth.items())
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by bench/forward_auth.py for one run.
daemon off;
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp}{upstreams}{floor_servers}{auth_servers}
}}
"""


def start_nginx(
    procs: Procs, prefix: Path, *, workers: str, floors: list[str], auth: list[AuthBackend]
) -> Nginx:
    """Start nginx (not daemonised: it is our child) serving ``floors`` and ``auth``."""
    prefix.mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(floors) + len(auth))
    floor_ports = dict(zip(floors, ports[: len(floors)], strict=True))
    auth_ports = dict(zip(auth, ports[len(floors) :], strict=True))
    config = render_config(prefix, workers=workers, floors=floor_ports, auth=auth_ports)
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    error_log = prefix / "error.log"
    base = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(error_log)]
    test = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
    if test.returncode != 0:
        raise RuntimeError(f"nginx rejected the config:\n{test.stderr}\n{config}")
    proc = procs.add(
        "nginx",
        subprocess.Popen(
            base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        ),
    )
    every = {**floor_ports, **{backend.setup: port for backend, port in auth_ports.items()}}
    for port in every.values():
        wait_listening(port, proc, "nginx", timeout=15)
    return Nginx(proc, every, config, error_log)
