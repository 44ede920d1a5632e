"""The device key and what is signed with it.

The key is EC P-256 (the only kind the server accepts), made on the device and never sent
anywhere: enrolment sends its public half, and every report is a compact JWS (RFC 7515)
signed with it, ES256, header ``{"alg": "ES256", "typ": "JWT"}``, claims ``sub`` (the
device id), ``iat``, ``jti`` (random) and ``posture``. The server verifies it with the key
it stored at enrolment, pinned to ES256, so a report cannot be forged without the key or
replayed (``iat`` must be recent and newer than the last report's, ``jti`` is fresh).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.agent.errors import AgentHomeUnsafe

__all__ = [
    "certificate_expiry",
    "load_private_key",
    "new_private_key",
    "private_key_pem",
    "public_key_pem",
    "sign_bind_proof",
    "sign_report",
]


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the file's mode (0600) is what protects it, as for SSH keys
    an unattended timer must use without a passphrase."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """SubjectPublicKeyInfo PEM, as the enrolment request carries it."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AgentHomeUnsafe(f"device.key is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AgentHomeUnsafe("device.key is not an EC P-256 key; enrol again with --force")
    return key


def sign_report(
    key: ec.EllipticCurvePrivateKey, *, device_id: str, iat: int, posture: dict[str, Any]
) -> str:
    claims = {"sub": device_id, "iat": iat, "jti": secrets.token_urlsafe(16), "posture": posture}
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"})


def sign_bind_proof(key: ec.EllipticCurvePrivateKey, *, device_id: str, iat: int) -> str:
    """The proof ``nevertrust agent bind-browser`` puts in its link: this device's key
    vouches that whoever opens the link (signed in as the device's owner) is at the device.
    ``purpose`` keeps it from being taken for a posture report, and a report for it."""
    claims = {
        "sub": device_id,
        "iat": iat,
        "jti": secrets.token_urlsafe(16),
        "purpose": "bind-browser",
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"})


def certificate_expiry(pem: str | None) -> datetime | None:
    """When the certificate in ``pem`` stops being valid (UTC), or None if unreadable."""
    if not pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None
    return cert.not_valid_after_utc.astimezone(UTC)
