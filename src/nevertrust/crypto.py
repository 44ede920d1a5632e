"""Small cryptographic building blocks shared by identity, gateway and web.

- Opaque tokens (session ids, one-time codes, setup links): 256 bits from ``secrets``,
  stored only as SHA-256. A keyless hash suffices because the input is uniformly random.
- The master key (32 random bytes in a 0600 file) never signs or encrypts directly;
  purpose-specific keys are derived from it with HKDF-SHA256 (RFC 5869).
- Secrets at rest are encrypted with AES-256-GCM (NIST SP 800-38D), the purpose bound in
  as associated data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nevertrust.errors import ConfigError, NeverTrustError

__all__ = [
    "DecryptionFailed",
    "MasterKey",
    "constant_time_equal",
    "hash_token",
    "load_or_create_master_key",
    "new_token",
]

_KEY_BYTES = 32


class DecryptionFailed(NeverTrustError):
    code = "decryption-failed"


def new_token() -> str:
    """A URL-safe token carrying 256 bits of randomness."""
    return secrets.token_urlsafe(_KEY_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


class MasterKey:
    """The installation's root secret; hands out derived keys and seals data at rest."""

    def __init__(self, material: bytes) -> None:
        if len(material) != _KEY_BYTES:
            raise ConfigError(f"master key must be {_KEY_BYTES} bytes, got {len(material)}")
        self._material = material

    def derive(self, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=purpose.encode()
        ).derive(self._material)

    def encrypt(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.derive("seal:" + purpose)).encrypt(
            nonce, plaintext, purpose.encode()
        )

    def decrypt(self, sealed: bytes, *, purpose: str) -> bytes:
        try:
            return AESGCM(self.derive("seal:" + purpose)).decrypt(
                sealed[:12], sealed[12:], purpose.encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionFailed(
                f"cannot decrypt {purpose}: wrong master key or damaged data"
            ) from exc

    def sign(self, purpose: str, message: bytes) -> bytes:
        return hmac.new(self.derive("mac:" + purpose), message, hashlib.sha256).digest()


def load_or_create_master_key(path: Path) -> MasterKey:
    """Read the master key file, creating it (mode 0600) on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = secrets.token_bytes(_KEY_BYTES)
        # O_EXCL: two processes starting at once must not both create different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    except OSError as exc:
        raise ConfigError(f"config: bad secret_key_file '{path}': {exc.strerror}") from exc
    if len(data) != _KEY_BYTES:
        raise ConfigError(
            f"config: bad secret_key_file '{path}': expected {_KEY_BYTES} bytes, got {len(data)}"
        )
    return MasterKey(data)
