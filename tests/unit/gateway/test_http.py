from __future__ import annotations

from typing import Any

import pytest

from nevertrust.gateway.http import cookie_header, header, parse_cookies, request_host


def scope_with(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(headers)}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        (b"", {}),
        (b"a=1", {"a": "1"}),
        (b"a=1; b=2", {"a": "1", "b": "2"}),
        (b"a=1;b=2", {"a": "1", "b": "2"}),
        (b'  a="quoted" ', {"a": "quoted"}),
        (b"a=1; a=2", {"a": "1"}),
        (b"flag; a=1", {"a": "1"}),
        (b"=orphan; a=1", {"a": "1"}),
        (b"a=; b=2", {"a": "", "b": "2"}),
        (b"tok=abc==; x=y", {"tok": "abc==", "x": "y"}),
        (b";;; ;", {}),
        ("n=caf\u00e9".encode("latin-1"), {"n": "caf\u00e9"}),
    ],
    ids=[
        "absent",
        "empty",
        "one",
        "two",
        "no_space",
        "quoted_and_padded",
        "first_duplicate_wins",
        "valueless_part_skipped",
        "nameless_part_skipped",
        "empty_value_kept",
        "equals_in_value_kept",
        "only_separators",
        "latin1_bytes",
    ],
)
def test_parse_cookies(raw: bytes | None, expected: dict[str, str]) -> None:
    assert parse_cookies(raw) == expected


def test_header_returns_first_value_of_the_named_header() -> None:
    scope = scope_with((b"cookie", b"a=1"), (b"host", b"x"), (b"cookie", b"b=2"))
    assert header(scope, b"cookie") == b"a=1"
    assert header(scope, b"user-agent") is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, ""),
        (b"", ""),
        (b"whoami.localhost", "whoami.localhost"),
        (b"whoami.localhost:8080", "whoami.localhost"),
        (b"WhoAmI.LocalHost:8080", "whoami.localhost"),
        (b"  whoami.localhost  ", "whoami.localhost"),
        (b"127.0.0.1:9000", "127.0.0.1"),
        (b"[::1]:8080", "[::1]"),
        (b"[::1]", "[::1]"),
        (b"[2001:db8::1]:443", "[2001:db8::1]"),
    ],
    ids=[
        "absent",
        "empty",
        "plain",
        "with_port",
        "upper_case",
        "padded",
        "ipv4_with_port",
        "ipv6_with_port",
        "ipv6",
        "ipv6_long",
    ],
)
def test_request_host(host: bytes | None, expected: str) -> None:
    scope = scope_with(*([(b"host", host)] if host is not None else []))
    assert request_host(scope) == expected


def test_request_host_uses_the_first_host_header() -> None:
    scope = scope_with((b"host", b"whoami.localhost"), (b"host", b"evil.com"))
    assert request_host(scope) == "whoami.localhost"


def test_cookie_header_is_host_only_and_http_only() -> None:
    name, value = cookie_header("nt_app", "tok", max_age=60, secure=True)
    assert name == b"set-cookie"
    text = value.decode()
    assert text == "nt_app=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
    assert "domain" not in text.lower()


def test_cookie_header_without_max_age_or_secure() -> None:
    _, value = cookie_header("nt_state", "", path="/.nevertrust", same_site="Strict")
    assert value == b"nt_state=; Path=/.nevertrust; HttpOnly; SameSite=Strict"
