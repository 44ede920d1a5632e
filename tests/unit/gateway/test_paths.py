"""normalise_path / split_target: one canonical path for the policy and the upstream."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nevertrust.errors import InvalidInput, NeverTrustError
from nevertrust.gateway.paths import MAX_PATH_BYTES, BadPath, normalise_path, split_target

# Attack strings and ordinary paths with what the policy (and the upstream) will see.
ACCEPTED = [
    ("/", "/"),
    ("/index.html", "/index.html"),
    ("/api/v1/users/42", "/api/v1/users/42"),
    ("/a/b/", "/a/b/"),
    ("/public/../admin", "/admin"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/public/%2E%2E/admin", "/admin"),
    ("/public/.%2e/admin", "/admin"),
    ("/public/%2e./admin", "/admin"),
    ("/./admin", "/admin"),
    ("/%2e/admin", "/admin"),
    ("//admin", "/admin"),
    ("///admin//x///", "/admin/x/"),
    ("/a/./b/../c", "/a/c"),
    ("/a/b/..", "/a/"),
    ("/a/b/.", "/a/b/"),
    ("/a/b/%2e%2e", "/a/"),
    ("/..", "/"),
    ("/../../../etc/passwd", "/etc/passwd"),
    ("/public/../../admin", "/admin"),
    ("/.", "/"),
    ("/.well-known/openid-configuration", "/.well-known/openid-configuration"),
    ("/a/...", "/a/..."),
    ("/a/.../b", "/a/.../b"),
    ("/a/..b/c", "/a/..b/c"),
    ("/a/b..", "/a/b.."),
    ("/%61dmin", "/admin"),
    ("/%41%42%43%7e%7E%2d%5f", "/ABC~~-_"),
    ("/caf%c3%a9", "/caf%C3%A9"),
    ("/a%3bb", "/a%3Bb"),
    ("/q%3fx", "/q%3Fx"),
    ("/100%25", "/100%25"),
    ("/%2541", "/%2541"),  # double-encoded letter: harmless, kept as is
    ("/admin;x", "/admin;x"),  # ';' is path data for RFC 3986 upstreams: kept as is
    ("/admin;jsessionid=1/x", "/admin;jsessionid=1/x"),
    ("/a;x/../b", "/b"),
    ("/a b", "/a%20b"),
    ('/a"<>`{|}^[]', "/a%22%3C%3E%60%7B%7C%7D%5E%5B%5D"),
    ("/a?b#c", "/a%3Fb%23c"),
    ("/!$&'()*+,;=:@", "/!$&'()*+,;=:@"),
    ("/caf\u00e9", "/caf%E9"),  # a str is the Latin-1 view of the wire bytes
    ("/\u20ac", "/%E2%82%AC"),  # ...unless it cannot be: then UTF-8
]

REJECTED = [
    ("", "start with '/'"),
    ("admin", "start with '/'"),
    ("*", "start with '/'"),
    ("http://evil/admin", "start with '/'"),
    ("/a%2fb", "encoded slash"),
    ("/public%2F..%2Fadmin", "encoded slash"),
    ("/public/..%2Fadmin", "encoded slash"),
    ("/a\\b", "backslash"),
    ("/public\\..\\admin", "backslash"),
    ("/a%5cb", "encoded backslash"),
    ("/a%5C..%5Cadmin", "encoded backslash"),
    ("/a\x00b", "control character 0x00"),
    ("/a\r\nHost: evil", "control character 0x0D"),
    ("/a\tb", "control character 0x09"),
    ("/a\x7f", "control character 0x7F"),
    ("/a%00.html", "encoded control character %00"),
    ("/a%0d%0aSet-Cookie:x", "encoded control character %0D"),
    ("/a%1F", "encoded control character %1F"),
    ("/a%7f", "encoded control character %7F"),
    ("/a%", "invalid percent-escape '%'"),
    ("/a%4", "invalid percent-escape '%4'"),
    ("/a%G1", "invalid percent-escape '%G1'"),
    ("/a%%41", "invalid percent-escape"),
    ("/a%u002e", "invalid percent-escape"),
    ("/public/%252e%252e/admin", "double-encoded"),
    ("/public%252fadmin", "double-encoded"),
    ("/a%255c", "double-encoded"),
    ("/a%2500", "double-encoded"),
    ("/%25%32%65%25%32%65/admin", "double-encoded"),  # becomes %252e once decoded
    ("/public/..;/admin", "dot segment with parameters"),
    ("/public/..;x=1/admin", "dot segment with parameters"),
    ("/public/.;/admin", "dot segment with parameters"),
    ("/public/..%3B/admin", "dot segment with parameters"),
    ("/public/%2e%2e;/admin", "dot segment with parameters"),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[a for a, _ in ACCEPTED])
def test_normalise_path_gives_the_canonical_path(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected
    assert normalise_path(expected) == expected


@pytest.mark.parametrize(("raw", "expected"), [a for a in ACCEPTED if a[0].isascii()])
def test_bytes_and_ascii_str_give_the_same_path(raw: str, expected: str) -> None:
    assert normalise_path(raw.encode("ascii")) == expected


@pytest.mark.parametrize(("raw", "message"), REJECTED, ids=[repr(r) for r, _ in REJECTED])
def test_ambiguous_paths_are_refused_naming_the_problem(raw: str, message: str) -> None:
    with pytest.raises(BadPath) as caught:
        normalise_path(raw)
    assert message in str(caught.value)
    with pytest.raises(BadPath):
        normalise_path(raw.encode("latin-1"))


def test_bad_path_is_a_400_input_error_with_a_stable_code() -> None:
    error = BadPath("x")
    assert isinstance(error, NeverTrustError)
    assert isinstance(error, InvalidInput)
    assert (BadPath.code, BadPath.http_status) == ("bad-path", 400)


def test_raw_non_ascii_bytes_are_percent_encoded_upper_case() -> None:
    assert normalise_path("/café/ü".encode()) == "/caf%C3%A9/%C3%BC"
    assert normalise_path(b"/\xff\x80") == "/%FF%80"


def test_str_from_latin1_decoded_wire_bytes_round_trips_exactly() -> None:
    wire = "/café".encode()
    assert normalise_path(wire.decode("latin-1")) == normalise_path(wire)


def test_paths_up_to_8192_bytes_are_accepted() -> None:
    path = "/" + "a" * (MAX_PATH_BYTES - 1)
    assert normalise_path(path) == path
    assert normalise_path("/" + "a/" * 4000 + "..") == "/" + "a/" * 3999


def test_longer_paths_are_refused() -> None:
    with pytest.raises(BadPath, match="longer than 8192"):
        normalise_path("/" + "a" * MAX_PATH_BYTES)


def test_a_path_that_grows_past_the_limit_when_encoded_is_refused() -> None:
    with pytest.raises(BadPath, match="once encoded"):
        normalise_path(b"/" + b"\xe9" * 3000)


# split_target

TARGETS = [
    ("/", ("/", "")),
    ("/a?b=1&c=2", ("/a", "b=1&c=2")),
    ("/a?", ("/a", "")),
    ("/a?b?c", ("/a", "b?c")),
    ("/a#frag", ("/a", "")),
    ("/a?b=1#frag", ("/a", "b=1")),
    ("/a#frag?notquery", ("/a", "")),
    ("/public/%2e%2e/admin?x=%2F", ("/admin", "x=%2F")),
    ("//evil.example/x", ("/evil.example/x", "")),
    ("/?redirect=http://x/", ("/", "redirect=http://x/")),
]


@pytest.mark.parametrize(("target", "expected"), TARGETS, ids=[t for t, _ in TARGETS])
def test_split_target_gives_normalised_path_and_raw_query(
    target: str, expected: tuple[str, str]
) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://evil.example/admin", "absolute-form"),
        ("https://x/", "absolute-form"),
        ("evil.example:443", "origin-form"),
        ("*", "asterisk-form"),
        ("", "origin-form"),
        ("?x=1", "origin-form"),
        ("/a?x=1\r\nSet-Cookie: y", "query contains a control character"),
        ("/a?x=\x00", "query contains a control character"),
        ("/a%2fb?x", "encoded slash"),
    ],
)
def test_split_target_refuses_other_forms(target: str, message: str) -> None:
    with pytest.raises(BadPath, match=re.escape(message)):
        split_target(target)


# Properties

_TOKENS = [
    "/", "//", "a", "admin", "public", "B", "0", ".", "..", "...", "-", "_", "~",
    "%2e", "%2E", "%2e%2e", ".%2e", "%61", "%7e", "%2f", "%5c", "\\", ";", "..;", ";x",
    "%3B", "%3b", "%25", "%252e", "%2541", "%25%32%65", "%C3%A9", "\u00e9", "%e9",
    " ", "?", "#", "[", "%00", "\x00", "\n", "%", "%g1", "%4", "@", ":", "=",
]  # fmt: skip
_paths = st.lists(st.sampled_from(_TOKENS), max_size=24).map(
    lambda parts: ("/" + "".join(parts)).encode("utf-8")
)
# Mostly accepted pieces, after a prefix a rule would guard: exercises the prefix invariants.
_SEGMENT_TOKENS = [
    "/", "/", "/", "a", "admin", "public", ".", "..", "%2e", "%2E%2e", ".%2e", "%61", ";",
    ";x", "%3B", "%25", "%2541", "%C3%A9", " ", "~", "...", "..a",
]  # fmt: skip
_prefixed = st.tuples(
    st.sampled_from(["/public/", "/public", "/admin/", "/", "//", "/x/../"]),
    st.lists(st.sampled_from(_SEGMENT_TOKENS), max_size=16),
).map(lambda t: (t[0] + "".join(t[1])).encode("utf-8"))
_any_bytes = st.binary(max_size=64).map(lambda b: b"/" + b)
_ESCAPE = re.compile(r"%([0-9A-F]{2})")
_PCHAR = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/")
_UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normalised_or_none(raw: bytes) -> str | None:
    try:
        return normalise_path(raw)
    except BadPath:
        return None


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 exactly as written (input and output buffers), as an upstream does."""
    source, output = path, b""
    while source:
        if source.startswith(b"../"):
            source = source[3:]
        elif source.startswith(b"./"):
            source = source[2:]
        elif source.startswith(b"/./"):
            source = source[2:]
        elif source == b"/.":
            source = b"/"
        elif source.startswith(b"/../"):
            source = source[3:]
            output = output[: max(output.rfind(b"/"), 0)]
        elif source == b"/..":
            source = b"/"
            output = output[: max(output.rfind(b"/"), 0)]
        elif source in (b".", b".."):
            source = b""
        else:
            start = 1 if source.startswith(b"/") else 0
            end = source.find(b"/", start)
            end = len(source) if end < 0 else end
            output, source = output + source[:end], source[end:]
    return output


def _upstream_views(path: str) -> list[bytes]:
    """What differently built upstreams route on, given the path we send them."""
    once = unquote_to_bytes(path)
    twice = unquote_to_bytes(once)
    servlet = b"/".join(s.split(b";", 1)[0] for s in once.split(b"/"))  # Tomcat, Spring
    windows = once.replace(b"\\", b"/")  # IIS, Node on Windows
    return [
        remove_dot_segments(once),
        remove_dot_segments(re.sub(b"/+", b"/", once)),
        remove_dot_segments(twice),
        remove_dot_segments(servlet),
        remove_dot_segments(windows),
    ]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_prefixed, _paths, _any_bytes))
@example(b"/public/%2e%2e/admin")
@example(b"/public/..;/admin")
@example(b"/public/%252e%252e/admin")
def test_normalising_twice_changes_nothing(raw: bytes) -> None:
    once = _normalised_or_none(raw)
    if once is not None:
        assert normalise_path(once) == once
        assert normalise_path(once.encode("ascii")) == once


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_prefixed, _paths, _any_bytes))
def test_output_is_rooted_without_dot_segments_or_empty_segments(raw: bytes) -> None:
    path = _normalised_or_none(raw)
    if path is None:
        return
    assert path.startswith("/")
    assert "//" not in path
    assert not any(segment in (".", "..") for segment in path.split("/"))
    assert len(path) <= MAX_PATH_BYTES
    # Only pchar and upper-case escapes, and never an escape of an unreserved character.
    assert set(_ESCAPE.sub("", path)) <= _PCHAR
    assert path.count("%") == len(_ESCAPE.findall(path))
    assert not any(chr(int(h, 16)) in _UNRESERVED for h in _ESCAPE.findall(path))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_prefixed, _paths, _any_bytes))
@example(b"/public/../admin")
@example(b"/public/%2e%2e/admin")
@example(b"/public/x/..%2f..%2fadmin")
@example(b"/public/..;/admin")
@example(b"/public/..\\admin")
@example(b"/public/%252e%252e/admin")
def test_a_public_prefix_means_the_upstream_serves_under_it_too(raw: bytes) -> None:
    """Allow-list rules: what the policy saw under /public/ is served from /public/."""
    path = _normalised_or_none(raw)
    if path is None or not path.startswith("/public/"):
        return
    for view in _upstream_views(path):
        assert view.startswith(b"/public/"), (raw, path, view)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_prefixed, _paths, _any_bytes))
@example(b"/%61dmin/x")
@example(b"//admin/x")
@example(b"/x/../admin/")
def test_an_upstream_admin_path_is_seen_as_admin_by_the_policy(raw: bytes) -> None:
    """Deny-list rules: what an upstream routes to /admin/ the policy saw as /admin/."""
    path = _normalised_or_none(raw)
    if path is None:
        return
    upstream = remove_dot_segments(unquote_to_bytes(path))
    assert upstream.startswith(b"/admin/") == path.startswith("/admin/"), (raw, path)
