"""A small real server for the device contract's two agent endpoints, and its own checks.

The platform's server (``/api/v1/devices/enrol`` and ``/reports``) is built beside the
agent; until the two meet in tests/e2e/test_agent.py, the agent's HTTP exchange is tested
against this one: real sockets, real TLS when asked, real X.509 and a real ES256
verification with the public key sent at enrolment. It implements the contract
minimally (compliance here is only "is the disk encrypted").
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nevertrust.agent.signing import new_private_key, public_key_pem, sign_report

POSTURE_FIELDS = {
    "platform", "os_name", "os_version", "kernel_version", "patch_age_days", "disk_encrypted",
    "firewall_active", "edr_running", "edr_name", "screen_lock_enabled", "collected_at",
}  # fmt: skip
_REPORTS = re.compile(r"^/api/v1/devices/(dev_[a-z2-7]+)/reports$")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Device:
    public_key: ec.EllipticCurvePublicKey
    name: str
    ownership: str
    last_iat: int = 0
    state: str = "registered"
    reasons: list[str] = field(default_factory=list)
    posture: dict[str, Any] | None = None
    reports: int = 0


@dataclass
class Seen:
    path: str
    host: str
    content_type: str
    body: bytes


class ContractServer:
    def __init__(self, *, tls: bool = False, max_age: int = 300, cert_hours: int = 24) -> None:
        self.tls = tls
        self.max_age = max_age
        self.cert_hours = cert_hours
        self.tokens: set[str] = set()
        self.devices: dict[str, Device] = {}
        self.seen: list[Seen] = []
        self.renew_next = False
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(_name("Test device CA"))
            .issuer_name(_name("Test device CA"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        if tls:
            self._wrap_tls()
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    # ---- set-up

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://auth.localhost:{self.port}"

    def ca_file(self, directory: Path) -> Path:
        path = directory / "portal-ca.pem"
        path.write_text(_pem(self.ca))
        return path

    def token(self) -> str:
        value = "ntd_" + secrets.token_urlsafe(24)
        self.tokens.add(value)
        return value

    def _issue(self, public_key: Any, subject: str, *, server: bool = False) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(self.ca.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=self.cert_hours))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(f"urn:nevertrust:device:{subject}")]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        return builder.sign(self.ca_key, hashes.SHA256())

    def _wrap_tls(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(key.public_key(), "auth.localhost", server=True)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert_path.write_text(_pem(cert))
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # ---- the two endpoints

    def enrol(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("token") not in self.tokens:
            return 401, {"error": "enrolment-token-invalid", "detail": "unknown or used token"}
        posture = body.get("posture")
        if not isinstance(posture, dict) or set(posture) != POSTURE_FIELDS:
            return 400, {"error": "invalid-posture", "detail": "posture: fields"}
        if posture["platform"] not in ("linux", "macos", "windows"):
            return 400, {"error": "invalid-posture", "detail": "posture.platform"}
        key = serialization.load_pem_public_key(body["public_key"].encode())
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            return 400, {"error": "invalid-input", "detail": "public_key: EC P-256 only"}
        self.tokens.discard(body["token"])
        device_id = "dev_" + "".join(
            secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(16)
        )
        self.devices[device_id] = Device(key, body["name"], body.get("ownership", "managed"))
        cert = self._issue(key, device_id)
        return 201, {
            "device_id": device_id,
            "certificate": _pem(cert),
            "ca_certificate": _pem(self.ca),
            "certificate_expires_at": cert.not_valid_after_utc.isoformat(),
            "report_interval_seconds": 300,
            "state": "registered",
            "reasons": [],
        }

    def report(self, device_id: str, token: str) -> tuple[int, dict[str, Any]]:
        device = self.devices.get(device_id)
        if device is None:
            return 404, {"error": "not-found", "detail": f"no device {device_id}"}
        try:
            claims = jwt.decode(
                token,
                device.public_key,
                algorithms=["ES256"],
                options={"require": ["sub", "iat", "jti"], "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            return 401, {"error": "report-signature-invalid", "detail": "signature"}
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid-input", "detail": str(exc)}
        now = int(datetime.now(UTC).timestamp())
        if claims["sub"] != device_id or abs(now - int(claims["iat"])) > self.max_age:
            return 401, {"error": "report-stale", "detail": "iat too far from now"}
        if int(claims["iat"]) <= device.last_iat:
            return 401, {"error": "report-replayed", "detail": "iat not newer"}
        posture = claims.get("posture")
        if not isinstance(posture, dict) or set(posture) != POSTURE_FIELDS:
            return 400, {"error": "invalid-posture", "detail": "posture: fields"}
        device.last_iat, device.posture, device.reports = claims["iat"], posture, device.reports + 1
        encrypted = posture["disk_encrypted"]
        device.reasons = (
            [] if encrypted else ["posture-missing" if encrypted is None else "disk-not-encrypted"]
        )
        device.state = "noncompliant" if device.reasons else "compliant"
        renewed = self._issue(device.public_key, device_id) if self.renew_next else None
        self.renew_next = False
        return 200, {
            "state": device.state,
            "compliant": not device.reasons,
            "reasons": device.reasons,
            "certificate": _pem(renewed) if renewed else None,
            "certificate_expires_at": renewed.not_valid_after_utc.isoformat() if renewed else None,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                content_type = self.headers.get("content-type", "")
                server.seen.append(
                    Seen(self.path, self.headers.get("host", ""), content_type, body)
                )
                match = _REPORTS.match(self.path)
                if self.path == "/api/v1/devices/enrol":
                    try:
                        status, answer = server.enrol(json.loads(body))
                    except ValueError:
                        status, answer = 400, {"error": "invalid-input", "detail": "JSON"}
                elif match and content_type == "application/jose":
                    status, answer = server.report(match.group(1), body.decode("ascii"))
                else:
                    status, answer = 404, {"error": "not-found", "detail": self.path}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def contract_server() -> Iterator[ContractServer]:
    server = ContractServer()
    server.start()
    yield server
    server.stop()


# ---- the test server itself keeps the contract (so the agent's tests mean something)


def _post(server: ContractServer, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(
            f"http://127.0.0.1:{server.port}{path}",
            headers={"host": f"auth.localhost:{server.port}", **kwargs.pop("headers", {})},
            **kwargs,
        )


def _posture() -> dict[str, Any]:
    return dict.fromkeys(POSTURE_FIELDS) | {"platform": "linux", "disk_encrypted": True}


def test_contract_server_refuses_a_report_signed_by_another_key(
    contract_server: ContractServer,
) -> None:
    key = new_private_key()
    answer = _post(
        contract_server,
        "/api/v1/devices/enrol",
        json={
            "token": contract_server.token(),
            "public_key": public_key_pem(key),
            "name": "h",
            "ownership": "managed",
            "posture": _posture(),
        },
    )
    assert answer.status_code == 201
    device_id = answer.json()["device_id"]
    now = int(datetime.now(UTC).timestamp())
    forged = sign_report(new_private_key(), device_id=device_id, iat=now, posture=_posture())
    path = f"/api/v1/devices/{device_id}/reports"
    jose = {"content-type": "application/jose"}
    refused = _post(contract_server, path, content=forged, headers=jose)
    assert (refused.status_code, refused.json()["error"]) == (401, "report-signature-invalid")
    good = sign_report(key, device_id=device_id, iat=now, posture=_posture())
    assert _post(contract_server, path, content=good, headers=jose).json()["state"] == "compliant"
    again = _post(contract_server, path, content=good, headers=jose)
    assert again.json()["error"] == "report-replayed"


def test_contract_server_tokens_are_one_time(contract_server: ContractServer) -> None:
    token = contract_server.token()
    body = {"token": token, "public_key": public_key_pem(new_private_key()), "name": "h",
            "ownership": "managed", "posture": _posture()}  # fmt: skip
    assert _post(contract_server, "/api/v1/devices/enrol", json=body).status_code == 201
    assert _post(contract_server, "/api/v1/devices/enrol", json=body).status_code == 401
