"""Upstream URL validation: the gateway only proxies to plain http(s) origins."""

from __future__ import annotations

from urllib.parse import urlsplit

from nevertrust.apps.errors import InvalidUpstream

__all__ = ["validate_upstream"]


def validate_upstream(url: str) -> str:
    """Return ``url`` normalised (no trailing slash) or raise naming what is wrong."""
    # urlsplit silently drops tabs and newlines, so check the string that will be stored.
    if any(ord(c) < 0x21 or c == "\x7f" for c in url.strip()):
        raise InvalidUpstream(
            f"upstream {url!r} must not contain control characters or spaces", field="upstream"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidUpstream(f"upstream {url!r} is not a URL: {exc}", field="upstream") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidUpstream(
            f"upstream {url!r}: scheme must be http or https, got {parts.scheme or 'none'!r}",
            field="upstream",
        )
    if not parts.hostname:
        raise InvalidUpstream(f"upstream {url!r} has no host", field="upstream")
    if parts.username or parts.password:
        # Do not echo the URL: the credentials in it are exactly what must not be printed.
        raise InvalidUpstream(
            f"upstream for host {parts.hostname!r} must not carry credentials (user:password@)",
            field="upstream",
        )
    if parts.query or parts.fragment:
        raise InvalidUpstream(
            f"upstream {url!r} must not have a query or fragment", field="upstream"
        )
    del port
    return url.strip().rstrip("/")
