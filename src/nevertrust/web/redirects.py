"""Where the portal may send a browser after sign-in: only to registered apps of ours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["AppTarget", "parse_app_target"]


@dataclass(frozen=True, slots=True)
class AppTarget:
    app: str
    path: str  # path and query, always starting with a single '/'


def parse_app_target(
    url: str,
    *,
    base_domain: str,
    scheme: str,
    port: int,
    is_registered: Callable[[str], bool],
) -> AppTarget | None:
    """Return the app and path ``url`` points to, or None if it is not one of our apps.

    Rejects other schemes, hosts outside the base domain, nested subdomains, other ports,
    user-info tricks (``http://app.localhost@evil``), backslashes and control characters.
    """
    if not url or len(url) > 4000 or any(ord(c) < 0x21 or c in "\\\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        url_port = parts.port
    except ValueError:
        return None
    if parts.scheme != scheme or parts.username is not None or parts.password is not None:
        return None
    default_port = 443 if scheme == "https" else 80
    # An explicit ':0' is not the default port; only an absent port means the default.
    if (default_port if url_port is None else url_port) != port:
        return None
    host = (parts.hostname or "").lower()
    suffix = "." + base_domain
    if not host.endswith(suffix):
        return None
    app = host[: -len(suffix)]
    if not app or "." in app or not is_registered(app):
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    if parts.query:
        path += "?" + parts.query
    return AppTarget(app=app, path=path)
