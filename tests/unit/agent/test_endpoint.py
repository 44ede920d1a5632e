"""Server URLs: https anywhere, http only on loopback; *.localhost dialled at 127.0.0.1."""

from __future__ import annotations

import pytest

from nevertrust.agent import ServerEndpoint
from nevertrust.errors import InvalidInput


def test_localhost_names_are_dialled_at_loopback_with_their_host_header() -> None:
    endpoint = ServerEndpoint.parse("http://auth.localhost:8080/")
    assert endpoint.url == "http://auth.localhost:8080"
    assert endpoint.dial_origin == "http://127.0.0.1:8080"
    assert endpoint.host_header == "auth.localhost:8080"


def test_https_uses_the_real_name_and_omits_the_default_port() -> None:
    endpoint = ServerEndpoint.parse("https://Auth.Example.com")
    assert endpoint.dial_origin == "https://auth.example.com:443"
    assert endpoint.host_header == "auth.example.com"


def test_a_path_prefix_is_kept() -> None:
    assert ServerEndpoint.parse("https://example.com/nt/").dial_origin.endswith("/nt")


@pytest.mark.parametrize(
    "url", ["http://localhost:9000", "http://127.0.0.1:9000", "http://[::1]:9000"]
)
def test_plain_http_is_fine_on_loopback(url: str) -> None:
    ServerEndpoint.parse(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://auth.example.com", "in the clear"),
        ("ftp://auth.example.com", "portal URL"),
        ("auth.example.com", "portal URL"),
        ("https://user:pw@auth.example.com", "no user"),
        ("https://auth.example.com:99999", "not a URL"),
    ],
)
def test_bad_server_urls_are_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        ServerEndpoint.parse(url)
