from __future__ import annotations

import pytest

from nevertrust.errors import InvalidInput
from nevertrust.tunnelclient import AppEndpoint, loopback_bind
from nevertrust.tunnelclient.forward import close_reason


def test_app_under_localhost_is_dialled_at_loopback_with_its_own_host_header() -> None:
    endpoint = AppEndpoint.from_portal("http://auth.localhost:8080", "db")

    assert endpoint.origin == "http://db.localhost:8080"
    assert endpoint.host_header == "db.localhost:8080"
    assert endpoint.dial_origin == "http://127.0.0.1:8080"
    assert endpoint.tunnel_url == "ws://db.localhost:8080/.nevertrust/tunnel"
    assert endpoint.loopback


def test_app_on_a_real_domain_is_dialled_by_name_over_tls() -> None:
    endpoint = AppEndpoint.from_portal("https://auth.corp.example.com/", "db")

    assert endpoint.origin == "https://db.corp.example.com"
    assert endpoint.dial_origin == "https://db.corp.example.com"
    assert endpoint.tunnel_url == "wss://db.corp.example.com/.nevertrust/tunnel"
    assert not endpoint.loopback


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("http://localhost:8080", "--server must be the portal URL"),
        ("ftp://auth.example.com", "--server must be the portal URL"),
        ("auth.example.com", "--server must be the portal URL"),
        ("http://auth.example.com:99999", "is not a URL"),
    ],
)
def test_server_must_be_the_portal_url(server: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        AppEndpoint.from_portal(server, "db")
    assert message in info.value.message


def test_app_name_is_checked_like_everywhere_else() -> None:
    with pytest.raises(InvalidInput, match="app name 'DB.evil' is invalid"):
        AppEndpoint.from_portal("http://auth.localhost:8080", "DB.evil")


@pytest.mark.parametrize(
    ("bind", "address"),
    [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "::1"),
     ("[::1]", "::1"), ("localhost", "127.0.0.1")],
)  # fmt: skip
def test_listens_on_loopback_addresses(bind: str, address: str) -> None:
    assert loopback_bind(bind) == address


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1"])  # noqa: S104
def test_refuses_to_listen_beyond_loopback_saying_why(bind: str) -> None:
    with pytest.raises(InvalidInput) as info:
        loopback_bind(bind)
    assert "is not a loopback address: anyone who can reach the port" in info.value.message


def test_refuses_a_bind_that_is_not_an_address() -> None:
    with pytest.raises(InvalidInput, match="is not an IP address"):
        loopback_bind("my-laptop")


@pytest.mark.parametrize(
    ("code", "reason", "line"),
    [
        (1008, "access ended", "db: access ended (revoked or policy changed)"),
        (1011, "cannot reach db: connection refused", "db: cannot reach db: connection refused"),
        (1009, "frames are limited", "db: the gateway closed the tunnel: frames are limited"),
        (1001, "gateway shutting down", "db: the gateway is restarting; reconnect"),
        (1000, "upstream closed the connection", None),
        (None, "", None),
    ],
)
def test_gateway_close_codes_become_one_line_reasons(
    code: int | None, reason: str, line: str | None
) -> None:
    assert close_reason("db", code, reason) == line
