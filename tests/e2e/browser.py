"""A small cookie-aware HTTP client that behaves like a browser across *.localhost hosts.

glibc does not resolve ``*.localhost``, so every request goes to 127.0.0.1 with the Host
header set. One ``httpx.Client`` per host keeps one cookie jar per host, which is exactly
the host-only cookie isolation a browser applies; redirects are followed by hand so a
Location on another host uses that host's jar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = ["Browser", "Hop", "hidden_fields"]

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the first form in ``html`` (name -> value)."""
    form = html.split("</form>", 1)[0]
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(form):
        attrs = {k.lower(): unescape(v) for k, v in _ATTR.findall(tag)}
        if attrs.get("type", "").lower() == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


@dataclass
class Hop:
    method: str
    url: str
    response: httpx.Response

    @property
    def location(self) -> str | None:
        """The absolute URL a redirect points to (relative Locations resolved)."""
        raw = self.response.headers.get("location")
        return None if raw is None else urljoin(self.url, raw)


@dataclass
class Browser:
    port: int
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    history: list[Hop] = field(default_factory=list)

    def client(self, host: str) -> httpx.Client:
        """The client (and cookie jar) for ``host``, e.g. 'auth.localhost:8080'."""
        if host not in self.clients:
            self.clients[host] = httpx.Client(
                base_url=f"http://127.0.0.1:{self.port}",
                headers={"host": host},
                follow_redirects=False,
                trust_env=False,
                timeout=15,
            )
        return self.clients[host]

    def cookies(self, host: str) -> dict[str, str]:
        return dict(self.client(host).cookies.items())

    def set_cookie(self, host: str, name: str, value: str) -> None:
        """Plant a host-only cookie, as if ``host`` had set it (or an attacker had)."""
        # The jar sees the connection host 127.0.0.1; a later Set-Cookie of the same name
        # from the server replaces this one, as in a browser.
        self.client(host).cookies.set(name, value, domain="127.0.0.1", path="/")

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """One request, no redirects followed; recorded in ``history``."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.netloc.endswith(f".localhost:{self.port}"):
            raise AssertionError(f"the browser was sent outside the platform: {url!r}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        response = self.client(parts.netloc).request(method, target, **kwargs)  # type: ignore[arg-type]
        self.history.append(Hop(method, url, response))
        return response

    def go(
        self, method: str, url: str, *, max_hops: int = 10, **kwargs: object
    ) -> tuple[httpx.Response, list[Hop]]:
        """Request ``url`` and follow redirects across hosts like a browser (303/302 -> GET)."""
        hops: list[Hop] = []
        for _ in range(max_hops):
            response = self.request(method, url, **kwargs)
            hop = self.history[-1]
            hops.append(hop)
            if not response.is_redirect:
                return response, hops
            location = hop.location
            assert location is not None
            method, url, kwargs = "GET", location, {}
        raise AssertionError(f"more than {max_hops} redirects: {[h.url for h in hops]}")

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()
