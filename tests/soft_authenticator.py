"""A WebAuthn authenticator in software, for tests: real keys, real CBOR, real signatures.

It answers the JSON options our server sends the browser the way a browser plus a
platform authenticator would (WebAuthn L2 §6.1 authenticator data, §6.5 attestation
object with format "none", §5.8.1 client data), so the server is tested against genuine
cryptography rather than a mocked py_webauthn.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["Alg", "SoftAuthenticator", "b64url", "from_b64url"]

Alg = Literal["ES256", "EdDSA", "RS256"]
_UP, _UV, _AT = 0x01, 0x04, 0x40
_AAGUID = bytes.fromhex("6e74657374617574686e746573740001")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Key:
    credential_id: bytes
    private: Any
    alg: Alg
    user_handle: bytes
    rp_id: str
    sign_count: int = 0

    def cose(self) -> bytes:
        public = self.private.public_key()
        if self.alg == "ES256":
            numbers = public.public_numbers()
            return cbor2.dumps(
                {
                    1: 2,
                    3: -7,
                    -1: 1,
                    -2: numbers.x.to_bytes(32, "big"),
                    -3: numbers.y.to_bytes(32, "big"),
                }
            )
        if self.alg == "EdDSA":
            return cbor2.dumps(
                {1: 1, 3: -8, -1: 6, -2: public.public_bytes(Encoding.Raw, PublicFormat.Raw)}
            )
        numbers = public.public_numbers()
        return cbor2.dumps(
            {
                1: 3,
                3: -257,
                -1: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
                -2: numbers.e.to_bytes(3, "big"),
            }
        )

    def sign(self, data: bytes) -> bytes:
        if self.alg == "ES256":
            return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        if self.alg == "EdDSA":
            return bytes(self.private.sign(data))
        return bytes(self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def _new_private(alg: Alg) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SoftAuthenticator:
    """Holds credentials like a security key; ``origin`` is where the 'browser' is."""

    origin: str
    keys: dict[bytes, _Key] = field(default_factory=dict)
    counter: bool = True  # False: like synced passkeys, always report 0

    def create(
        self,
        options_json: str,
        *,
        alg: Alg = "ES256",
        origin: str | None = None,
        rp_id: str | None = None,
        ceremony: str = "webauthn.create",
        user_verified: bool = True,
        reuse: bool = False,
    ) -> dict[str, Any]:
        """``navigator.credentials.create()`` for ``options_json`` (the server's options).

        ``reuse`` answers with the credential made last time, ignoring the exclude list, as
        a broken or hostile client could.
        """
        options = json.loads(options_json)
        excluded = {from_b64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if excluded & set(self.keys) and not reuse:
            raise AssertionError("InvalidStateError: this authenticator is already registered")
        if reuse:
            key = list(self.keys.values())[-1]
        else:
            key = _Key(
                credential_id=os.urandom(32),
                private=_new_private(alg),
                alg=alg,
                user_handle=from_b64url(options["user"]["id"]),
                rp_id=rp_id or options["rp"]["id"],
            )
            self.keys[key.credential_id] = key
        flags = _UP | _AT | (_UV if user_verified else 0)
        auth_data = (
            hashlib.sha256(key.rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", key.sign_count)
            + _AAGUID
            + struct.pack(">H", len(key.credential_id))
            + key.credential_id
            + key.cose()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(ceremony, options["challenge"], origin)
        return {
            "id": b64url(key.credential_id),
            "rawId": b64url(key.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(
        self,
        options_json: str,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        ceremony: str = "webauthn.get",
        sign_count: int | None = None,
        any_key: bool = False,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: signs with the first allowed credential we hold.

        ``any_key`` signs with our first credential even when the options do not allow it.
        """
        options = json.loads(options_json)
        allowed = [from_b64url(c["id"]) for c in options.get("allowCredentials", [])]
        matches = [self.keys[i] for i in allowed if i in self.keys]
        if any_key:
            matches = list(self.keys.values())
        if not matches:
            raise AssertionError("NotAllowedError: no credential of this authenticator allowed")
        key = matches[0]
        if sign_count is not None:
            key.sign_count = sign_count
        elif self.counter:
            key.sign_count += 1
        auth_data = (
            hashlib.sha256((rp_id or key.rp_id).encode()).digest()
            + bytes([_UP | _UV])
            + struct.pack(">I", key.sign_count)
        )
        client_data = self._client_data(ceremony, options["challenge"], origin)
        signature = key.sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": b64url(key.credential_id),
            "rawId": b64url(key.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(key.user_handle),
            },
        }

    def _client_data(self, ceremony: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": ceremony,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()
