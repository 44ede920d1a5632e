from __future__ import annotations

import pytest

from nevertrust.apps import InvalidUpstream, validate_upstream
from nevertrust.apps.upstreams import tcp_address
from nevertrust.errors import InvalidInput


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://127.0.0.1:9001", "http://127.0.0.1:9001"),
        ("http://127.0.0.1:9001/", "http://127.0.0.1:9001"),
        ("https://wiki.internal", "https://wiki.internal"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("  http://host/base/  ", "http://host/base"),
        ("http://host/base//", "http://host/base"),
    ],
)
def test_accepts_http_and_https_origins(url: str, normalised: str) -> None:
    assert validate_upstream(url) == normalised


@pytest.mark.parametrize(
    ("url", "normalised", "address"),
    [
        ("tcp://127.0.0.1:5432", "tcp://127.0.0.1:5432", ("127.0.0.1", 5432)),
        ("tcp://DB.Internal:5432", "tcp://db.internal:5432", ("db.internal", 5432)),
        ("  tcp://db:5432/ ", "tcp://db:5432", ("db", 5432)),
        ("tcp://[::1]:22", "tcp://[::1]:22", ("::1", 22)),
        ("tcp://[0:0::1]:22", "tcp://[::1]:22", ("::1", 22)),
        ("tcp://redis_1.svc:6379", "tcp://redis_1.svc:6379", ("redis_1.svc", 6379)),
        ("tcp://10.0.0.7:65535", "tcp://10.0.0.7:65535", ("10.0.0.7", 65535)),
    ],
)
def test_accepts_tcp_host_and_port_for_tunnels(
    url: str, normalised: str, address: tuple[str, int]
) -> None:
    assert validate_upstream(url) == normalised
    assert tcp_address(normalised) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host", "scheme must be http or https, got 'ftp' (or tcp://host:port"),
        ("file:///etc/passwd", "scheme must be http or https, got 'file'"),
        ("unix:///run/app.sock", "scheme must be http or https, got 'unix'"),
        ("udp://host:53", "got 'udp' (or tcp://host:port for a tunnel)"),
        ("host:8080", "scheme must be http or https, got 'host'"),
        ("127.0.0.1:8080", "scheme must be http or https"),
        ("", "scheme must be http or https, got 'none'"),
        ("http://", "has no host"),
        ("http:///path", "has no host"),
        ("http://user:pw@host", "must not carry credentials"),
        ("http://user@host", "must not carry credentials"),
        ("http://host/?a=1", "must not have a query or fragment"),
        ("http://host/#frag", "must not have a query or fragment"),
        ("http://host:99999", "is not a URL"),
        ("http://host:port", "is not a URL"),
        ("http://[::1", "is not a URL"),
        ("http://ho\nst", "control characters or spaces"),
        ("http://host/a b", "control characters or spaces"),
        ("http://host\t/", "control characters or spaces"),
        ("http://host/\x00", "control characters or spaces"),
        ("tcp://db.internal", "a tcp upstream needs a port"),
        ("tcp://db.internal:0", "port must be 1-65535, got 0"),
        ("tcp://db.internal:70000", "is not a URL"),
        ("tcp://:5432", "has no host"),
        ("tcp://db:5432/postgres", "a tcp upstream is only tcp://host:port, nothing after"),
        ("tcp://db:5432?sslmode=require", "only tcp://host:port, nothing after"),
        ("tcp://db:5432#x", "only tcp://host:port, nothing after"),
        ("tcp://db:5432?", "only tcp://host:port, nothing after"),
        ("tcp://user:pw@db:5432", "must not carry credentials"),
        ("tcp://-db:5432", "host '-db' is neither an IP address nor a host name"),
        ("tcp://db..internal:5432", "is neither an IP address nor a host name"),
        ("tcp://d%62:5432", "is neither an IP address nor a host name"),
    ],
)
def test_rejects_bad_upstreams_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(InvalidUpstream) as info:
        validate_upstream(url)
    assert message in info.value.message
    if "@" in url:
        # The message names the host but never repeats the credentials.
        assert "user" not in info.value.message.replace("user:password@", "")
        assert "pw" not in info.value.message
    else:
        assert repr(url) in info.value.message or url == ""
    assert info.value.details == {"field": "upstream"}


def test_invalid_upstream_is_invalid_input_with_its_own_code() -> None:
    assert issubclass(InvalidUpstream, InvalidInput)
    assert InvalidUpstream.code == "invalid-upstream"
    assert InvalidUpstream.http_status == 400


def test_tcp_address_refuses_what_is_not_a_tcp_upstream() -> None:
    with pytest.raises(InvalidUpstream):
        tcp_address("http://127.0.0.1:5432")
