from __future__ import annotations

from pathlib import Path

import pytest

from nevertrust.errors import InvalidInput
from nevertrust.tunnelclient import AppEndpoint, client_tls

HTTPS = AppEndpoint.from_portal("https://auth.localhost:8443", "db")
HTTP = AppEndpoint.from_portal("http://auth.localhost:8080", "db")


def test_plain_http_server_uses_no_device_and_library_defaults(tmp_path: Path) -> None:
    tls = client_tls(HTTP, tmp_path, device=None)

    assert tls.context is None and tls.device is None


def test_device_on_a_plain_http_server_is_refused_with_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--device needs the gateway's mTLS listener"):
        client_tls(HTTP, tmp_path, device=True)


def test_device_without_an_enrolled_agent_is_refused_naming_the_missing_file(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInput, match="no device certificate at .*device.pem"):
        client_tls(HTTPS, tmp_path / "agent", device=True)


def test_https_without_an_agent_home_presents_no_device(tmp_path: Path) -> None:
    tls = client_tls(HTTPS, tmp_path / "agent", device=None)

    assert tls.device is None
