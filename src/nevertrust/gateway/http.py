"""Small, allocation-light HTTP helpers for plain-ASGI handlers on the hot path."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from nevertrust.types import Scope, Send

__all__ = [
    "cookie_header",
    "header",
    "parse_cookies",
    "request_host",
    "send_html",
    "send_json",
    "send_redirect",
]


def header(scope: Scope, name: bytes) -> bytes | None:
    """First value of header ``name`` (lower-case bytes)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def request_host(scope: Scope) -> str:
    """The Host header without port, lower-cased; '' when absent."""
    raw = header(scope, b"host")
    if not raw:
        return ""
    host = raw.decode("latin-1").strip().lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def parse_cookies(raw: bytes | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    if not raw:
        return cookies
    for part in raw.decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def cookie_header(
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    secure: bool = False,
    path: str = "/",
    same_site: str = "Lax",
) -> tuple[bytes, bytes]:
    """A host-only, HttpOnly Set-Cookie header (no Domain attribute on purpose)."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", f"SameSite={same_site}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


async def send_html(
    send: Send,
    status: int,
    body: str,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
                (b"x-frame-options", b"DENY"),
                *_SECURITY_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def send_json(
    send: Send,
    status: int,
    payload: Mapping[str, Any],
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *_SECURITY_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def send_redirect(
    send: Send, location: str, *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"content-length", b"0"),
                *_SECURITY_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
