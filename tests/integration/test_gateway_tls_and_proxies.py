"""Upstream TLS is always verified (system CAs plus an optional bundle), and client
addresses are taken from X-Forwarded-For only when a trusted proxy sent it."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from nevertrust.app import Services

from ._gateway import app_token, host_headers, platform, publish, upstream_server
from ._support import PASSWORD, audit_records


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_group("staff", actor="admin:root")
    any_services.directory.set_membership("staff", "alice", True, actor="admin:root")
    return any_services


def make_ca_and_server_cert(tmp: Path) -> tuple[Path, ssl.SSLContext]:
    """A private CA and a server certificate for 127.0.0.1, made by the real openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=NeverTrust test CA")  # fmt: skip
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1",
            "-extfile", "san.cnf")  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    return tmp / "ca.pem", context


async def get(
    port: int, app: str, token: str, extra: dict[str, str] | None = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"http://127.0.0.1:{port}/", headers={**host_headers(app, port, token), **(extra or {})}
        ) as response,
    ):
        return response.status, await response.text()


async def test_an_upstream_certificate_from_an_unknown_ca_is_refused(
    svc: Services, tmp_path: Path
) -> None:
    _, tls = make_ca_and_server_cert(tmp_path)
    async with upstream_server(tls) as up:
        publish(svc, "secure", f"https://127.0.0.1:{up.port}")
        token = app_token(svc, "alice", "secure")
        async with platform(svc) as (_, port):
            status, body = await get(port, "secure", token)
    assert status == 502
    assert "TLS certificate is not trusted" in body
    assert up.seen_headers == []


async def test_an_upstream_certificate_from_the_configured_ca_bundle_is_accepted(
    svc: Services, tmp_path: Path
) -> None:
    ca, tls = make_ca_and_server_cert(tmp_path)
    svc.settings.gateway.upstream_ca_file = ca
    async with upstream_server(tls) as up:
        publish(svc, "secure", f"https://127.0.0.1:{up.port}")
        token = app_token(svc, "alice", "secure")
        async with platform(svc) as (_, port):
            status, body = await get(port, "secure", token)
    assert (status, body) == (200, "hello /")


@pytest.mark.parametrize(
    ("trusted", "expected_source"),
    [([], "127.0.0.1"), (["127.0.0.1/32"], "203.0.113.5")],
    ids=["untrusted-peer", "trusted-proxy"],
)
async def test_x_forwarded_for_counts_only_from_trusted_proxies_and_is_overwritten_upstream(
    svc: Services, trusted: list[str], expected_source: str
) -> None:
    svc.settings.gateway.trusted_proxies = trusted
    async with upstream_server() as up:
        publish(svc, "wiki", f"http://127.0.0.1:{up.port}")
        token = app_token(svc, "alice", "wiki")
        async with platform(svc) as (runtime, port):
            status, _ = await get(
                port,
                "wiki",
                token,
                {"x-forwarded-for": "198.51.100.1, 203.0.113.5", "x-forwarded-host": "x.evil"},
            )
            runtime.services.audit.flush_now()
    assert status == 200
    allowed = [r for r in audit_records(svc) if r.action == "pdp:decision:allowed"]
    assert allowed[-1].source == expected_source
    # The upstream gets one address, ours, never the client's chain or host claims.
    assert up.seen_headers[-1]["x-forwarded-for"] == expected_source
    assert up.seen_headers[-1]["x-forwarded-host"] == f"wiki.localhost:{port}"
