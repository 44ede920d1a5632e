"""Reading the proxy's description of a request for forward-auth: strict, or refused."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nevertrust.errors import ConfigError, NeverTrustError
from nevertrust.gateway import forwarded
from nevertrust.gateway.forwarded import (
    BadForwardedRequest,
    ForwardedRequest,
    from_envoy,
    from_original_url,
    from_x_forwarded,
    parse_networks,
    peer_allowed,
)
from nevertrust.gateway.paths import BadPath

Headers = list[tuple[bytes, bytes]]


def caddy(**overrides: str | None) -> Headers:
    """X-Forwarded-* headers as Caddy and Traefik send them, plus unrelated ones."""
    values: dict[str, str | None] = {
        "x-forwarded-method": "GET",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "app.example.com",
        "x-forwarded-uri": "/docs/intro?lang=en",
        "x-forwarded-for": "203.0.113.7",
    }
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    headers = [(b"host", b"auth.example.com"), (b"cookie", b"nt_app_session=abc")]
    headers += [(k.encode(), v.encode("latin-1")) for k, v in values.items() if v is not None]
    return headers


def nginx(**overrides: str | None) -> Headers:
    values: dict[str, str | None] = {
        "x-original-url": "https://app.example.com/docs/intro?lang=en",
        "x-original-method": "POST",
        "x-forwarded-for": "203.0.113.7",
        "x-real-ip": "198.51.100.1",
    }
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return [(k.encode(), v.encode("latin-1")) for k, v in values.items() if v is not None]


def envoy(**overrides: str | None) -> Headers:
    values: dict[str, str | None] = {
        "host": "app.example.com",
        "x-forwarded-proto": "https",
        "x-envoy-external-address": "203.0.113.7",
        "x-forwarded-for": "198.51.100.1",
    }
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return [(k.encode(), v.encode("latin-1")) for k, v in values.items() if v is not None]


def test_caddy_and_traefik_headers_describe_the_request() -> None:
    assert from_x_forwarded(caddy()) == ForwardedRequest(
        method="GET",
        scheme="https",
        host="app.example.com",
        port=None,
        path="/docs/intro",
        query="lang=en",
        client_ip="203.0.113.7",
    )


def test_nginx_original_url_describes_the_request() -> None:
    assert from_original_url(nginx()) == ForwardedRequest(
        method="POST",
        scheme="https",
        host="app.example.com",
        port=None,
        path="/docs/intro",
        query="lang=en",
        client_ip="203.0.113.7",
    )


def test_envoy_check_request_describes_the_request() -> None:
    request = from_envoy(envoy(), path_after_prefix="/docs/intro?lang=en", method="DELETE")
    assert request == ForwardedRequest(
        method="DELETE",
        scheme="https",
        host="app.example.com",
        port=None,
        path="/docs/intro",
        query="lang=en",
        client_ip="203.0.113.7",
    )


def test_forwarded_request_is_immutable() -> None:
    request = from_x_forwarded(caddy())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.path = "/admin"  # type: ignore[misc]


def test_bad_forwarded_request_is_a_400_with_a_stable_code() -> None:
    assert issubclass(BadForwardedRequest, NeverTrustError)
    assert (BadForwardedRequest.code, BadForwardedRequest.http_status) == (
        "bad-forwarded-request",
        400,
    )


# Duplicates: two values invite the proxy and us to pick different ones.


@pytest.mark.parametrize(
    "name",
    ["x-forwarded-method", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-uri",
     "x-forwarded-for"],
)  # fmt: skip
def test_x_forwarded_header_sent_twice_is_refused(name: str) -> None:
    headers = [*caddy(), (name.encode(), b"/admin" if name.endswith("uri") else b"x")]
    with pytest.raises(BadForwardedRequest, match="appears more than once"):
        from_x_forwarded(headers)


@pytest.mark.parametrize("name", ["x-original-url", "x-original-method", "x-forwarded-for",
                                  "x-real-ip"])  # fmt: skip
def test_nginx_header_sent_twice_is_refused(name: str) -> None:
    headers = [*nginx(), (name.encode(), b"https://app.example.com/admin")]
    with pytest.raises(BadForwardedRequest, match="appears more than once"):
        from_original_url(headers)


@pytest.mark.parametrize("name", ["host", "x-forwarded-proto", "x-envoy-external-address",
                                  "x-forwarded-for"])  # fmt: skip
def test_envoy_header_sent_twice_is_refused(name: str) -> None:
    headers = [*envoy(), (name.encode(), b"admin.example.com")]
    with pytest.raises(BadForwardedRequest, match="appears more than once"):
        from_envoy(headers, path_after_prefix="/", method="GET")


def test_unrelated_headers_may_repeat() -> None:
    headers = [*caddy(), (b"accept", b"a"), (b"accept", b"b"), (b"host", b"other")]
    assert from_x_forwarded(headers).host == "app.example.com"


# Missing headers are named.


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("x-forwarded-method", "X-Forwarded-Method"),
        ("x-forwarded-proto", "X-Forwarded-Proto"),
        ("x-forwarded-host", "X-Forwarded-Host"),
        ("x-forwarded-uri", "X-Forwarded-Uri"),
    ],
)
def test_missing_x_forwarded_header_is_refused_by_name(name: str, display: str) -> None:
    with pytest.raises(BadForwardedRequest, match=f"missing {display} header"):
        from_x_forwarded(caddy(**{name: None}))
    with pytest.raises(BadForwardedRequest, match=f"missing {display} header"):
        from_x_forwarded(caddy(**{name: ""}))


def test_missing_original_url_is_refused_by_name() -> None:
    with pytest.raises(BadForwardedRequest, match="missing X-Original-URL header"):
        from_original_url(nginx(x_original_url=None))


def test_nginx_method_defaults_to_get() -> None:
    assert from_original_url(nginx(x_original_method=None)).method == "GET"


def test_envoy_without_host_is_refused() -> None:
    with pytest.raises(BadForwardedRequest, match="missing Host header"):
        from_envoy(envoy(host=None), path_after_prefix="/", method="GET")


def test_envoy_without_proto_says_how_to_forward_it() -> None:
    with pytest.raises(BadForwardedRequest, match="X-Forwarded-Proto.*allowed_headers"):
        from_envoy(envoy(x_forwarded_proto=None), path_after_prefix="/", method="GET")


def test_client_is_unknown_when_no_client_header_is_sent() -> None:
    assert from_x_forwarded(caddy(x_forwarded_for=None)).client_ip == ""
    headers = nginx(x_forwarded_for=None, x_real_ip=None)
    assert from_original_url(headers).client_ip == ""
    headers = envoy(x_envoy_external_address=None, x_forwarded_for=None)
    assert from_envoy(headers, path_after_prefix="/", method="GET").client_ip == ""


# The client is the rightmost X-Forwarded-For entry: the one our proxy added.

XFF = [
    ("203.0.113.7", "203.0.113.7"),
    ("6.6.6.6, 203.0.113.7", "203.0.113.7"),
    ("127.0.0.1,10.0.0.1,203.0.113.7", "203.0.113.7"),
    ("1.1.1.1, 2001:DB8:0:0::1", "2001:db8::1"),
    ("203.0.113.7, not-an-ip", ""),  # never falls back to a client-supplied entry
    ("203.0.113.7, ", ""),
    ("203.0.113.7:443", ""),
    ("fe80::1%eth0", ""),
    ("unknown", ""),
    ("1.2.3.999", ""),
]


@pytest.mark.parametrize(("value", "client"), XFF, ids=[v for v, _ in XFF])
def test_client_is_the_rightmost_forwarded_for_entry(value: str, client: str) -> None:
    assert from_x_forwarded(caddy(x_forwarded_for=value)).client_ip == client


def test_spoofed_leftmost_forwarded_for_is_ignored_by_nginx_reader() -> None:
    headers = nginx(x_forwarded_for="127.0.0.1, 203.0.113.7")
    assert from_original_url(headers).client_ip == "203.0.113.7"


def test_nginx_reader_falls_back_to_x_real_ip() -> None:
    assert from_original_url(nginx(x_forwarded_for=None)).client_ip == "198.51.100.1"
    assert from_original_url(nginx(x_forwarded_for="junk")).client_ip == "198.51.100.1"


def test_envoy_prefers_its_external_address_over_forwarded_for() -> None:
    assert from_envoy(envoy(), path_after_prefix="/", method="GET").client_ip == "203.0.113.7"
    headers = envoy(x_envoy_external_address=None, x_forwarded_for="6.6.6.6, 198.51.100.1")
    assert from_envoy(headers, path_after_prefix="/", method="GET").client_ip == "198.51.100.1"


@settings(max_examples=200, deadline=None)
@given(
    spoofed=st.lists(st.text(alphabet="0123456789abcdef.:, x", max_size=20), max_size=5),
    real=st.ip_addresses(),
)
def test_nothing_the_client_prepends_changes_the_client_address(
    spoofed: list[str], real: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    value = ", ".join([*spoofed, str(real)])
    assert from_x_forwarded(caddy(x_forwarded_for=value)).client_ip == str(real)


# Hosts: a DNS name or an IP literal, an optional port, nothing else.

GOOD_HOSTS = [
    ("app.example.com", ("app.example.com", None)),
    ("App.Example.COM", ("app.example.com", None)),
    ("app.example.com.", ("app.example.com", None)),
    ("app.example.com:8443", ("app.example.com", 8443)),
    ("localhost:1", ("localhost", 1)),
    ("my_app.internal", ("my_app.internal", None)),
    ("xn--bcher-kva.example", ("xn--bcher-kva.example", None)),
    ("127.0.0.1", ("127.0.0.1", None)),
    ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ("[::1]", ("[::1]", None)),
    ("[0:0:0:0:0:0:0:1]:8080", ("[::1]", 8080)),
    ("[2001:DB8::1]", ("[2001:db8::1]", None)),
    ("a" * 63 + ".com", ("a" * 63 + ".com", None)),
]

BAD_HOSTS = [
    "",
    "user@app.example.com",
    "user:pass@app.example.com",
    "app.example.com@evil.example",
    "app example.com",
    "app.example.com/admin",
    "app.example.com, evil.example",
    "app.example.com\\evil",
    "-app.example.com",
    "app-.example.com",
    "app..example.com",
    ".app.example.com",
    "a" * 64 + ".com",
    ("a" * 60 + ".") * 5 + "com",
    "caf\u00e9.example",
    "127.1",
    "0x7f.0.0.1",
    "1.2.3.999",
    "010.0.0.1",
    "::1",
    "[::1",
    "[::1]x",
    "[fe80::1%25eth0]",
    "[not-v6]",
    "app.example.com:",
    "app.example.com:0",
    "app.example.com:65536",
    "app.example.com:+80",
    "app.example.com:80:80",
    "app.example.com:8o",
    "app.example.com:123456",
    ":443",
]


@pytest.mark.parametrize(("value", "expected"), GOOD_HOSTS, ids=[v for v, _ in GOOD_HOSTS])
def test_valid_hosts_are_lower_cased_and_split_from_their_port(
    value: str, expected: tuple[str, int | None]
) -> None:
    request = from_x_forwarded(caddy(x_forwarded_host=value))
    assert (request.host, request.port) == expected


@pytest.mark.parametrize("value", BAD_HOSTS, ids=[repr(v)[:40] for v in BAD_HOSTS])
def test_bad_hosts_are_refused(value: str) -> None:
    with pytest.raises(BadForwardedRequest, match="X-Forwarded-Host"):
        from_x_forwarded(caddy(x_forwarded_host=value))
    with pytest.raises(BadForwardedRequest, match="Host"):
        from_envoy(envoy(host=value), path_after_prefix="/", method="GET")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aZ0-_.:[]@/ \\%,1f", max_size=24))
def test_any_accepted_host_is_a_bare_name_or_literal(value: str) -> None:
    try:
        request = from_x_forwarded(caddy(x_forwarded_host=value))
    except BadForwardedRequest:
        return
    assert request.host == request.host.lower()
    assert not set(request.host) & set("@/\\ ,%:") or request.host.startswith("[")
    assert request.port is None or 1 <= request.port <= 65535


# Method and scheme.


@pytest.mark.parametrize("method", ["get", "Get", "G3T", "GE T", "M-SEARCH", "A" * 21, ""])
def test_methods_that_are_not_upper_case_tokens_are_refused(method: str) -> None:
    with pytest.raises(BadForwardedRequest):
        from_x_forwarded(caddy(x_forwarded_method=method or None))
    with pytest.raises(BadForwardedRequest, match="method"):
        from_envoy(envoy(), path_after_prefix="/", method=method)


def test_long_custom_method_of_twenty_letters_is_accepted() -> None:
    assert from_x_forwarded(caddy(x_forwarded_method="A" * 20)).method == "A" * 20


@pytest.mark.parametrize(("value", "scheme"), [("http", "http"), ("HTTPS", "https")])
def test_scheme_is_http_or_https_in_lower_case(value: str, scheme: str) -> None:
    assert from_x_forwarded(caddy(x_forwarded_proto=value)).scheme == scheme


@pytest.mark.parametrize("value", ["ftp", "https, http", "ws", "javascript"])
def test_other_schemes_are_refused(value: str) -> None:
    with pytest.raises(BadForwardedRequest, match="http or https"):
        from_x_forwarded(caddy(x_forwarded_proto=value))


# Paths go through normalise_path; its errors are wrapped, naming the header.

PATHS = [
    ("/public/../admin", "/admin"),
    ("/public/%2e%2e/admin?x=1", "/admin"),
    ("//admin", "/admin"),
    ("/./admin", "/admin"),
    ("/%61dmin", "/admin"),
    ("/admin;x", "/admin;x"),
]


@pytest.mark.parametrize(("uri", "path"), PATHS)
def test_forwarded_paths_are_normalised(uri: str, path: str) -> None:
    assert from_x_forwarded(caddy(x_forwarded_uri=uri)).path == path
    url = "https://app.example.com" + uri
    assert from_original_url(nginx(x_original_url=url)).path == path
    assert from_envoy(envoy(), path_after_prefix=uri, method="GET").path == path


@pytest.mark.parametrize(
    "uri",
    ["/a%2fb", "/a\\b", "/a%00", "/public/..;/admin", "http://evil.example/admin", "admin"],
)
def test_bad_forwarded_paths_are_refused_naming_the_header(uri: str) -> None:
    with pytest.raises(BadForwardedRequest, match="X-Forwarded-Uri") as caught:
        from_x_forwarded(caddy(x_forwarded_uri=uri))
    assert isinstance(caught.value.__cause__, BadPath)


# X-Original-URL


ORIGINAL_URLS = [
    ("https://app.example.com", ("https", "app.example.com", None, "/", "")),
    ("https://app.example.com?x=1", ("https", "app.example.com", None, "/", "x=1")),
    ("https://app.example.com#top", ("https", "app.example.com", None, "/", "")),
    ("HTTP://APP.example.com:8080/a/../b?c", ("http", "app.example.com", 8080, "/b", "c")),
    ("https://[::1]:8443/x", ("https", "[::1]", 8443, "/x", "")),
    ("https://10.0.0.2/x?y=http://z/", ("https", "10.0.0.2", None, "/x", "y=http://z/")),
    # Split as a browser would: the host ends at '#', the rest is a fragment.
    ("https://evil.example#@app.example.com/", ("https", "evil.example", None, "/", "")),
]


@pytest.mark.parametrize(("url", "parts"), ORIGINAL_URLS, ids=[u for u, _ in ORIGINAL_URLS])
def test_original_url_is_split_into_its_parts(
    url: str, parts: tuple[str, str, int | None, str, str]
) -> None:
    request = from_original_url(nginx(x_original_url=url))
    assert (request.scheme, request.host, request.port, request.path, request.query) == parts


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/docs/intro", "absolute URL"),
        ("app.example.com/docs", "absolute URL"),
        ("ftp://app.example.com/", "http or https"),
        ("https://user@app.example.com/", "userinfo"),
        ("https://app.example.com\\@evil.example/", "userinfo"),
        ("https:///docs", "not a valid host name"),
        ("https://app.example.com/%2e%2e%2fadmin", "encoded slash"),
    ],
)
def test_bad_original_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(BadForwardedRequest, match=message):
        from_original_url(nginx(x_original_url=url))


# Peers allowed to ask


def test_parse_networks_reads_cidrs_and_bare_addresses() -> None:
    assert parse_networks(["127.0.0.0/8", " ::1 ", "10.1.2.3/16"]) == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.1.0.0/16"),
    )
    assert parse_networks([]) == ()


@pytest.mark.parametrize("item", ["localhost", "10.0.0.0/33", "", "1.2.3.4/8/8"])
def test_parse_networks_refuses_anything_else_naming_it(item: str) -> None:
    with pytest.raises(ConfigError, match="IP address or CIDR network"):
        parse_networks(["127.0.0.0/8", item])


LOCAL = parse_networks(["127.0.0.0/8", "::1/128", "10.20.0.0/16"])


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.20.99.1", True),
        ("10.21.0.1", False),
        ("192.0.2.1", False),
        ("::2", False),
        ("", False),
        ("/run/nevertrust.sock", False),
        ("127.0.0.1:5000", False),
    ],
)
def test_peer_allowed_only_inside_the_configured_networks(peer: str, allowed: bool) -> None:
    assert peer_allowed(peer, LOCAL) is allowed
    assert peer_allowed(peer, LOCAL) is allowed  # cached answer agrees


def test_peer_allowed_answers_for_each_network_set_separately() -> None:
    narrow = parse_networks(["127.0.0.2/32"])
    assert peer_allowed("127.0.0.1", LOCAL) is True
    assert peer_allowed("127.0.0.1", narrow) is False
    assert peer_allowed("127.0.0.2", narrow) is True
    assert peer_allowed("127.0.0.1", ()) is False


def test_peer_allowed_with_a_changing_list_is_never_stale() -> None:
    networks = [ipaddress.ip_network("192.0.2.0/24")]
    assert peer_allowed("198.51.100.1", networks) is False
    networks.append(ipaddress.ip_network("198.51.100.0/24"))
    assert peer_allowed("198.51.100.1", networks) is True


def test_peer_cache_stays_bounded_when_addresses_churn() -> None:
    for i in range(10_000):
        peer_allowed(str(ipaddress.IPv4Address(0x0A000000 + i)), LOCAL)
    assert len(forwarded._peer_cache) <= 4096
    assert peer_allowed("127.0.0.1", LOCAL) is True
