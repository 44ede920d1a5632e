"""A software device for tests: its own EC P-256 key, posture documents, signed reports.

What the real agent (``nevertrust agent``) does on the wire, without collecting anything:
tests choose the posture and the time, and can sign with the wrong key or algorithm.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def posture(**overrides: Any) -> dict[str, Any]:
    """A posture that meets the default Linux policy (encrypted disk, patched this week)."""
    document: dict[str, Any] = {
        "platform": "linux",
        "os_name": "Debian GNU/Linux",
        "os_version": "12.7",
        "kernel_version": "6.1.0-25-amd64",
        "patch_age_days": 3,
        "disk_encrypted": True,
        "firewall_active": True,
        "edr_running": False,
        "edr_name": None,
        "screen_lock_enabled": None,
        "collected_at": "2026-11-25T11:59:00Z",
    }
    document.update(overrides)
    return document


class SoftDevice:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.device_id = ""

    @property
    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def report(
        self,
        document: dict[str, Any] | None = None,
        *,
        at: datetime,
        device_id: str | None = None,
        jti: str | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A compact JWS report made at ``at`` (its iat), signed ES256 with the device key."""
        payload: dict[str, Any] = {
            "sub": device_id if device_id is not None else self.device_id,
            "iat": int(at.timestamp()),
            "jti": jti or secrets.token_urlsafe(16),
            "posture": document if document is not None else posture(),
        }
        payload.update(claims or {})
        return jwt.encode(payload, key or self.key, algorithm="ES256", headers={"typ": "JWT"})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
