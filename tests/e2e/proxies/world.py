"""One NeverTrust, one upstream and one real proxy in front, with people and a policy.

The world the nginx and Caddy tests share: ``nevertrust up`` (its links name the proxy's
port, it believes the proxy's X-Forwarded-For, and only 127.0.0.1 may ask forward-auth
questions), an upstream that echoes what it receives, and the proxy configured from the
documented template. People:

* alice: admins and staff; bob, carol: staff; dave: no group. Each has NAME@example.com.
* app ``app``: ``/public/*`` for everyone signed in, everything for admins (a policy).
* app ``otherapp``: group staff (an access file). ``nosuch`` is no app at all.

Browsers connect from 127.0.0.2, outside ``gateway.forward_auth_clients``: only the proxy
may ask NeverTrust questions, and a browser's address must never be mistaken for it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from nevertrust.gateway import verify_assertion
from tests.e2e.browser import hidden_fields
from tests.e2e.conftest import Platform, free_port, new_platform, running
from tests.e2e.proxies.harness import (
    Caddy,
    EchoUpstream,
    Nginx,
    RawResponse,
    Seen,
    SourceBrowser,
    raw_request,
    render,
)

__all__ = [
    "CLIENT",
    "DOCS",
    "DOC_VALUES",
    "FORGED",
    "IDENTITY",
    "PASSWORD",
    "PATH_TRICKS",
    "World",
    "curl_sign_in",
    "documented_block",
    "one",
    "populate",
    "sign_in_location",
    "world",
]

DOCS = Path(__file__).resolve().parents[3] / "docs" / "forward-auth.md"
# The addresses docs/forward-auth.md shows, for its rendering of the templates.
DOC_VALUES = {
    "NEVERTRUST": "127.0.0.1:8080",
    "NEVERTRUST_AUTHZ": "127.0.0.1:8081",
    "UPSTREAM": "127.0.0.1:3000",
    "LISTEN": "80",
    "PORTAL_HOST": "auth.example.com",
    "APP_HOST": "app.example.com",
    "PORTAL_SITE": "auth.example.com",
    "APP_SITE": "app.example.com",
}
PASSWORD = "correct horse battery staple"
CLIENT = "127.0.0.2"  # where browsers connect from

ACCESS = """\
version: 1
groups:
  - name: admins
    members: [admin, alice]
  - name: staff
    members: [alice, bob, carol]
apps:
  - name: app
    upstream: {upstream}
    allow:
      groups: []
  - name: otherapp
    upstream: {upstream}
    allow:
      groups: [staff]
"""

POLICY = """\
version: 1
policies:
  - name: app
    apps: [app]
    rules:
      - name: public
        effect: allow
        when:
          http: {paths: ["/public/*"]}
      - name: admins
        effect: allow
        when:
          groups: [admins]
"""

Kind = Literal["nginx", "caddy"]

IDENTITY = ("X-NeverTrust-User", "X-NeverTrust-Email", "X-NeverTrust-Groups")

# What a client might send to pass for someone else.
FORGED = (
    "X-NeverTrust-User: admin\r\nX-NeverTrust-Groups: admins\r\n"
    "X-NeverTrust-Email: admin@example.com\r\nX-NeverTrust-Assertion: forged\r\n"
    "x-nevertrust-user: root\r\nX-NeverTrust-Role: owner\r\n"
    "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: otherapp.localhost\r\n"
)

# Requests a non-admin could try to reach /admin with while /public/* is open to them.
PATH_TRICKS = [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin/",
    "/public/./../admin",
    "/admin%2Fx",
    "/public/..%2Fadmin",
    "/public/%2e%2e%2fadmin",
    "//admin",
    "/public/..;/admin",
    "/public\\..\\admin",
    "/public/%252e%252e/admin",
    "/.nevertrust/../admin",
    "/%61dmin",
]


def one(headers: list[tuple[str, str]], name: str) -> str:
    """The single value of header ``name`` (failing if it is absent or repeated)."""
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


@dataclass
class World:
    platform: Platform
    upstream: EchoUpstream
    proxy: Nginx | Caddy
    kind: Kind
    authz_port: int  # NeverTrust's dedicated forward-auth listener
    values: dict[str, str]  # the template values (NeverTrust's addresses, the upstream)

    @property
    def port(self) -> int:
        """The proxy's port: where every user request goes."""
        return self.proxy.port

    def url(self, app: str, target: str = "/") -> str:
        return self.platform.app_url(app) + target

    def host(self, app: str) -> str:
        return f"{app}.localhost:{self.port}"

    def browser(self, source: str = CLIENT) -> SourceBrowser:
        b = SourceBrowser(self.port, source=source)
        self.platform.browsers.append(b)
        return b

    def sign_in(
        self, user: str, app: str = "app", target: str = "/public/"
    ) -> tuple[SourceBrowser, httpx.Response]:
        """A browser that asked for ``app`` through the proxy and signed in as ``user``,
        and the answer it got back at ``target``."""
        b = self.browser()
        form, hops = b.go("GET", self.url(app, target))
        assert hops[0].response.status_code == 302, hops[0].response.text
        response, hops = self.platform.login(b, user, PASSWORD, form=form)
        assert hops[-1].url == self.url(app, target), [h.url for h in hops]
        return b, response

    def signed_in(self, user: str, app: str = "app") -> SourceBrowser:
        return self.sign_in(user, app)[0]

    def app_cookie(self, b: SourceBrowser, app: str) -> str:
        return b.cookies(self.host(app))["nt_app_session"]

    def jwks(self) -> dict[str, Any]:
        response = self.browser().request("GET", self.platform.portal + "/.well-known/jwks.json")
        assert response.status_code == 200, response.text
        keys: dict[str, Any] = response.json()
        return keys

    def verify(self, assertion: str, app: str = "app") -> dict[str, Any]:
        """The assertion's claims, verified as an upstream would (JWKS from the portal)."""
        return verify_assertion(
            assertion,
            jwks=self.jwks(),
            expected_issuer=self.platform.portal,
            expected_audience=self.platform.app_url(app),
            now=datetime.now(UTC),
        )

    def raw(
        self,
        target: str,
        *,
        app: str = "app",
        cookie: str = "",
        headers: str = "",
        request_line: str = "",
        source: str = CLIENT,
    ) -> RawResponse:
        """One request through the proxy, sent byte for byte: ``target`` is not tidied up
        (httpx would resolve dot segments); ``headers`` are extra ``Name: value`` lines."""
        head = request_line or f"GET {target} HTTP/1.1"
        lines = [head, f"Host: {self.host(app)}"]
        if cookie:
            lines.append(f"Cookie: nt_app_session={cookie}")
        lines.extend(line for line in headers.splitlines() if line)
        lines.append("Connection: close")
        return raw_request(self.port, ("\r\n".join(lines) + "\r\n\r\n").encode(), source=source)

    def reached(self, since: int) -> list[Seen]:
        """What the upstream received after the first ``since`` requests."""
        return self.upstream.seen[since:]

    @contextmanager
    def another_proxy(
        self, directory: Path, *, edit: Callable[[str], str] = lambda site: site, **values: str
    ) -> Iterator[Nginx | Caddy]:
        """A second proxy of the same kind on its own port, its site changed by ``edit``
        and ``values`` (e.g. NEVERTRUST_AUTHZ); requests to it may name the first one's
        hosts, so the browser's cookies and links stay valid."""
        proxy = make_proxy(self.kind, directory, free_port(), {**self.values, **values})
        proxy.site = edit(proxy.site)
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()

    def logs(self) -> str:
        return (
            f"--- {self.kind} ---\n{self.proxy.logs()}\n"
            f"--- nevertrust stderr ---\n{self.platform.stderr[-20_000:]}"
        )


def sign_in_location(location: str, world: World, app: str) -> dict[str, str]:
    """The portal link of a sign-in redirect, checked, as its query parameters."""
    parts = urllib.parse.urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == world.platform.portal + "/authorize"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query["rd"].startswith(world.platform.app_url(app) + "/"), query
    return query


def populate(nt: Platform, directory: Path, upstream: str) -> None:
    """The people, apps and policy of this world (see the module docstring)."""
    for user in ("alice", "bob", "carol", "dave"):
        nt.cli(
            "users",
            "add",
            user,
            "--email",
            f"{user}@example.com",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    access = directory / "access.yaml"
    access.write_text(ACCESS.format(upstream=upstream))
    nt.cli("apply", "-f", str(access))
    policy = directory / "policy.yaml"
    policy.write_text(POLICY)
    nt.cli("policy", "apply", "-f", str(policy))


def make_proxy(kind: Kind, directory: Path, port: int, values: dict[str, str]) -> Nginx | Caddy:
    """nginx or Caddy on ``port`` with the documented site; ``values`` name NeverTrust's
    ports and the upstream (NEVERTRUST, NEVERTRUST_AUTHZ, UPSTREAM)."""
    if kind == "nginx":
        site = render(
            "nginx-site.conf",
            {
                **values,
                "LISTEN": f"127.0.0.1:{port}",
                "PORTAL_HOST": "auth.localhost",
                # One server block for every app host, so that unknown hosts are asked
                # about too; a deployment has one per app.
                "APP_HOST": "*.localhost",
            },
        )
        return Nginx(directory, site, port)
    site = render(
        "caddy-site.Caddyfile",
        {
            **values,
            "PORTAL_SITE": f"http://auth.localhost:{port}",
            "APP_SITE": f"http://*.localhost:{port}",
        },
    )
    return Caddy(directory, site, port)


@contextmanager
def world(
    directory: Path, kind: Kind, *, authz: Literal["listener", "main"] = "listener"
) -> Iterator[World]:
    """Start everything; ``authz`` says where the proxy asks: NeverTrust's forward-auth
    listener, or its main port."""
    with ExitStack() as stack:
        upstream = EchoUpstream().start()
        stack.callback(upstream.stop)
        proxy_port, authz_port = free_port(), free_port()
        while authz_port == proxy_port:
            authz_port = free_port()
        nt = new_platform(
            directory,
            public_port=proxy_port,
            env={
                "NEVERTRUST_GATEWAY__TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"]),
                "NEVERTRUST_GATEWAY__FORWARD_AUTH_CLIENTS": json.dumps(["127.0.0.1/32"]),
                "NEVERTRUST_GATEWAY__FORWARD_AUTH_PORT": str(authz_port),
            },
        )
        stack.enter_context(running(nt))
        populate(nt, directory, upstream.url)
        values = {
            "NEVERTRUST": f"127.0.0.1:{nt.port}",
            "NEVERTRUST_AUTHZ": f"127.0.0.1:{authz_port if authz == 'listener' else nt.port}",
            "UPSTREAM": f"127.0.0.1:{upstream.port}",
        }
        proxy = make_proxy(kind, directory / kind, proxy_port, values)
        proxy.start()
        stack.callback(proxy.stop)
        yield World(nt, upstream, proxy, kind, authz_port, values)


def curl_sign_in(w: World, directory: Path, user: str, target: str) -> tuple[str, str]:
    """curl, a real client with a cookie jar, asks for ``target`` on ``app`` through the
    proxy, fills in the sign-in form it is sent to and follows the redirects back.

    Returns the final body and ``"<url> <status>"`` of the last answer.
    """
    jar = directory / f"curl-{user}.jar"
    base = [
        "curl",
        "--silent",
        "--show-error",
        "--location",
        "--noproxy",
        "*",
        "--interface",
        CLIENT,
        "--cookie-jar",
        str(jar),
        "--cookie",
        str(jar),
        "--write-out",
        "\n%{url_effective} %{http_code}",
    ]
    for host in ("app", "auth"):
        base += ["--resolve", f"{host}.localhost:{w.port}:127.0.0.1"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory)}

    def curl(*args: str) -> tuple[str, str]:
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0, f"curl {args} exited {done.returncode}: {done.stderr}"
        body, _, last = done.stdout.rpartition("\n")
        return body, last

    form, last = curl(w.url("app", target))
    assert last.startswith(w.platform.portal + "/login?") and last.endswith(" 200"), last
    fields = {**hidden_fields(form), "username": user, "password": PASSWORD}
    data = [arg for k, v in fields.items() for arg in ("--data-urlencode", f"{k}={v}")]
    return curl(*data, w.platform.portal + "/login")


def documented_block(template: str) -> str:
    """The code block docs/forward-auth.md shows right after ``<!-- template: NAME -->``;
    it must be ``render(NAME, DOC_VALUES)``."""
    text = DOCS.read_text()
    marker = f"<!-- template: {template} -->"
    assert marker in text, f"{DOCS} has no {marker!r}"
    after = text.split(marker, 1)[1].lstrip("\n")
    assert after.startswith("```"), f"no code block right after {marker!r} in {DOCS}"
    body = after.split("\n", 1)[1]
    return body.split("\n```\n", 1)[0] + "\n"
