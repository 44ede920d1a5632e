from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.web.redirects import AppTarget, parse_app_target

REGISTERED = frozenset({"whoami", "wiki"})


def parse(url: str, *, scheme: str = "http", port: int = 80) -> AppTarget | None:
    return parse_app_target(
        url,
        base_domain="localhost",
        scheme=scheme,
        port=port,
        is_registered=REGISTERED.__contains__,
    )


@pytest.mark.parametrize(
    ("url", "app", "path"),
    [
        ("http://whoami.localhost", "whoami", "/"),
        ("http://whoami.localhost/", "whoami", "/"),
        ("http://whoami.localhost/a/b", "whoami", "/a/b"),
        ("http://whoami.localhost/a?x=1&y=%2F", "whoami", "/a?x=1&y=%2F"),
        ("http://whoami.localhost?x=1", "whoami", "/?x=1"),
        ("http://whoami.localhost:80/p", "whoami", "/p"),
        ("http://WHOAMI.LocalHost/P", "whoami", "/P"),
        ("HTTP://whoami.localhost/", "whoami", "/"),
        ("http://wiki.localhost/page#section", "wiki", "/page"),
        ("http://whoami.localhost/%2F%2Fevil.com", "whoami", "/%2F%2Fevil.com"),
    ],
    ids=[
        "bare_host",
        "root",
        "path",
        "path_and_query",
        "query_without_path",
        "explicit_default_port",
        "host_case_insensitive",
        "scheme_case_insensitive",
        "fragment_dropped",
        "encoded_slashes_stay_encoded",
    ],
)
def test_accepts_registered_app_targets(url: str, app: str, path: str) -> None:
    assert parse(url) == AppTarget(app=app, path=path)


def test_accepts_matching_non_default_port_and_https() -> None:
    assert parse("http://whoami.localhost:8080/x", port=8080) == AppTarget("whoami", "/x")
    assert parse("https://whoami.localhost/x", scheme="https", port=443) == AppTarget(
        "whoami", "/x"
    )
    assert parse("https://whoami.localhost:8443/", scheme="https", port=8443) == AppTarget(
        "whoami", "/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://evil.com/",
        "http://evil.com/?rd=http://whoami.localhost/",
        "http://whoami.localhost.evil.com/",
        "http://whoami.localhost@evil.com/",
        "http://user:pass@whoami.localhost/",
        "http://user@whoami.localhost/",
        "http://evil.com#@whoami.localhost/",
        "http://evil.com\\@whoami.localhost/",
        "//evil.com/",
        "//whoami.localhost/",
        "/\\evil.com",
        "\\\\evil.com",
        "http:\\\\evil.com",
        "http://whoami.localhost\\@evil.com/",
        "http://whoami.localhost/\\evil.com",
        "https://whoami.localhost/",
        "ftp://whoami.localhost/",
        "javascript:alert(1)",
        "javascript://whoami.localhost/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://whoami.localhost:8080/",
        "http://whoami.localhost:81/",
        "http://whoami.localhost:0/",
        "http://whoami.localhost:99999/",
        "http://whoami.localhost:abc/",
        "http://a.whoami.localhost/",
        "http://evil.com.whoami.localhost/",
        "http://grafana.localhost/",
        "http://auth.localhost/",
        "http://localhost/",
        "http://.localhost/",
        "http://whoami.localhost./",
        "http://whoamilocalhost/",
        "http://xlocalhost/",
        "http://whoami.localhost//evil.com",
        "http://whoami.localhost/a\r\nSet-Cookie: x=1",
        "http://whoami.localhost/%0d%0a\r\n",
        "http://whoami.localhost/\nx",
        "http://whoami.localhost/\tx",
        "http://whoami.localhost/a b",
        "http://whoami.localhost/\x00",
        "http://whoami.localhost/\x1b[31m",
        "http://whoami.localhost/\x7f",
        " http://whoami.localhost/",
        "http://[::1]/",
        "http://127.0.0.1/",
        "http://whoami.localhost/" + "a" * 4000,
    ],
    ids=[
        "empty",
        "other_host",
        "other_host_with_our_url_in_query",
        "our_host_as_prefix_of_evil",
        "userinfo_with_evil_host",
        "userinfo_password",
        "userinfo_user",
        "fragment_trick",
        "backslash_userinfo_trick",
        "scheme_relative_evil",
        "scheme_relative_ours",
        "slash_backslash",
        "double_backslash",
        "backslashes_after_scheme",
        "backslash_in_host",
        "backslash_in_path",
        "other_scheme_https",
        "other_scheme_ftp",
        "javascript",
        "javascript_with_our_host",
        "data",
        "other_port",
        "port_81",
        "port_zero",
        "port_out_of_range",
        "port_not_a_number",
        "nested_subdomain",
        "evil_nested_subdomain",
        "unregistered_app",
        "portal_host_not_an_app",
        "bare_base_domain",
        "empty_label",
        "trailing_dot",
        "suffix_without_dot",
        "other_name_ending_in_base_domain",
        "double_slash_path",
        "crlf_header_injection",
        "crlf_raw_and_encoded",
        "newline",
        "tab",
        "space",
        "nul",
        "escape_sequence",
        "delete_character",
        "leading_space",
        "ipv6_literal",
        "ipv4_literal",
        "too_long",
    ],
)
def test_rejects_open_redirect_attempts(url: str) -> None:
    assert parse(url) is None


def test_https_target_rejected_when_platform_is_served_over_https_on_other_port() -> None:
    assert parse("https://whoami.localhost/", scheme="https", port=8443) is None


def test_asks_registry_only_for_single_label_app_names() -> None:
    asked: list[str] = []

    def registry(name: str) -> bool:
        asked.append(name)
        return True

    parse_app_target(
        "http://a.b.localhost/",
        base_domain="localhost",
        scheme="http",
        port=80,
        is_registered=registry,
    )
    assert asked == []


_URL_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])


@given(st.text(alphabet=_URL_CHARS, max_size=60))
def test_never_returns_a_target_outside_a_registered_app(tail: str) -> None:
    for url in (tail, "http://" + tail, "http://whoami.localhost" + tail):
        target = parse(url)
        if target is None:
            continue
        assert target.app in REGISTERED
        assert target.path.startswith("/") and not target.path.startswith("//")
        assert "\\" not in target.path
        assert not any(ord(c) < 0x21 or c == "\x7f" for c in target.path)
