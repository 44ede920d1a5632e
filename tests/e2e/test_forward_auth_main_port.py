"""Forward-auth on NeverTrust's main port while ``gateway.trusted_proxies`` is set.

The main port believes a trusted proxy's X-Forwarded-For for the client's address (sign-in
records, bans, the portal). The forward-auth endpoints must not: their peer check is about
who is ASKING (the proxy), and the address a trusted proxy names in X-Forwarded-For is the
browser's, or whatever a host inside ``trusted_proxies`` chose to write there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest

from tests.e2e.conftest import new_platform, running
from tests.e2e.proxies.harness import raw_request
from tests.e2e.proxies.world import CLIENT, world

pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_a_proxy_may_ask_on_the_main_port_behind_trusted_proxies(
    tmp_path: Path, kind: Literal["nginx", "caddy"]
) -> None:
    """nginx/Caddy (127.0.0.1, a trusted proxy and the only forward-auth client) ask the
    main port about a browser at 127.0.0.2: the browser must get the sign-in redirect and,
    once signed in, the app; not 403 untrusted-client."""
    with world(tmp_path, kind, authz="main") as main:
        _, response = main.sign_in("bob", target="/public/x")

    assert response.status_code == 200, response.text


def test_a_host_inside_trusted_proxies_cannot_pose_as_a_forward_auth_client(
    tmp_path: Path,
) -> None:
    """With trusted_proxies 127.0.0.0/8 and forward_auth_clients 127.0.0.1 only, a peer at
    127.0.0.2 that writes ``X-Forwarded-For: 127.0.0.1`` is still 127.0.0.2 to the
    forward-auth peer check."""
    nt = new_platform(
        tmp_path,
        env={
            "NEVERTRUST_GATEWAY__TRUSTED_PROXIES": json.dumps(["127.0.0.0/8"]),
            "NEVERTRUST_GATEWAY__FORWARD_AUTH_CLIENTS": json.dumps(["127.0.0.1/32"]),
        },
    )
    question = (
        "GET /.nevertrust/authz/forward-auth HTTP/1.1\r\nHost: nevertrust\r\n"
        "X-Forwarded-Method: GET\r\nX-Forwarded-Proto: http\r\n"
        f"X-Forwarded-Host: app.localhost:{nt.port}\r\nX-Forwarded-Uri: /\r\n"
        "X-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n"
    ).encode()

    with running(nt):
        answer = raw_request(nt.port, question, source=CLIENT)

    assert answer.status == 403, answer.text
    assert answer.header("X-NeverTrust-Reason") == "untrusted-client"
