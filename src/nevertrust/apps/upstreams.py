"""Upstream URL validation: http(s) origins for the proxy, ``tcp://host:port`` for tunnels.

A ``tcp`` upstream is reached only through ``nevertrust connect`` (an authenticated
websocket per connection, see docs/tunnels.md); the gateway opens the TCP connection
itself, so the URL is nothing but an address: a host (name or IP) and a port.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from nevertrust.apps.errors import InvalidUpstream

__all__ = ["TCP_SCHEME", "tcp_address", "validate_upstream"]

TCP_SCHEME = "tcp"
_SCHEMES = ("http", "https", TCP_SCHEME)
# RFC 1123 host names (letters, digits, hyphens; underscores tolerated for internal names).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def _fail(message: str) -> InvalidUpstream:
    return InvalidUpstream(message, field="upstream")


def validate_upstream(url: str) -> str:
    """Return ``url`` normalised (no trailing slash) or raise naming what is wrong."""
    # urlsplit silently drops tabs and newlines, so check the string that will be stored.
    if any(ord(c) < 0x21 or c == "\x7f" for c in url.strip()):
        raise _fail(f"upstream {url!r} must not contain control characters or spaces")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _fail(f"upstream {url!r} is not a URL: {exc}") from exc
    if parts.scheme not in _SCHEMES:
        raise _fail(
            f"upstream {url!r}: scheme must be http or https, got {parts.scheme or 'none'!r} "
            "(or tcp://host:port for a tunnel)"
        )
    if not parts.hostname:
        raise _fail(f"upstream {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        # Do not echo the URL: the credentials in it are exactly what must not be printed.
        raise _fail(
            f"upstream for host {parts.hostname!r} must not carry credentials (user:password@)"
        )
    if parts.scheme == TCP_SCHEME:
        return _tcp(url, parts, port)
    if parts.query or parts.fragment:
        raise _fail(f"upstream {url!r} must not have a query or fragment")
    return url.strip().rstrip("/")


def _tcp(url: str, parts: SplitResult, port: int | None) -> str:
    """``tcp://host:port`` and nothing else (a lone trailing '/' is forgiven)."""
    if port is None:
        raise _fail(f"upstream {url!r}: a tcp upstream needs a port, e.g. tcp://db.internal:5432")
    if not 1 <= port <= 65535:
        raise _fail(f"upstream {url!r}: port must be 1-65535, got {port}")
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        raise _fail(f"upstream {url!r}: a tcp upstream is only tcp://host:port, nothing after")
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise _fail(
                f"upstream {url!r}: host {host!r} is neither an IP address nor a host name"
            ) from None
        return f"{TCP_SCHEME}://{host}:{port}"
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{TCP_SCHEME}://{shown}:{port}"


def tcp_address(upstream: str) -> tuple[str, int]:
    """(host, port) of a validated ``tcp://`` upstream; IPv6 hosts without brackets."""
    parts = urlsplit(upstream)
    if parts.scheme != TCP_SCHEME or not parts.hostname or parts.port is None:
        raise _fail(f"upstream {upstream!r} is not a tcp://host:port address")
    return parts.hostname, parts.port
