"""Assertion signing keys: ES256 (P-256), private halves sealed with the master key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey, new_token
from nevertrust.gateway.models import StoredKey

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = ["KeyService", "SigningKey"]

_PURPOSE = "assertion-signing-key"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


class KeyService:
    """Loads the active signing key, creating the first one on demand, and serves JWKS."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, master_key: MasterKey) -> None:
        self._uow = uow
        self._clock = clock
        self._master = master_key

    def _create(self) -> StoredKey:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = new_token()[:16]
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_jwk: dict[str, Any] = json.loads(
            jwt.algorithms.ECAlgorithm.to_jwk(private.public_key())
        )
        public_jwk.update(kid=kid, alg="ES256", use="sig")
        return StoredKey(
            kid=kid,
            algorithm="ES256",
            private_key_enc=self._master.encrypt(pem, purpose=_PURPOSE),
            public_jwk=json.dumps(public_jwk, sort_keys=True),
            created_at=self._clock.now(),
            retired_at=None,
        )

    def _stored(self) -> Sequence[StoredKey]:
        with self._uow.write() as uow:
            keys = [k for k in uow.keys.list() if k.retired_at is None]
            if not keys:
                uow.keys.insert(self._create())
                keys = [k for k in uow.keys.list() if k.retired_at is None]
            return keys

    def active(self) -> SigningKey:
        """The oldest unretired key: every replica picks the same one."""
        stored = self._stored()[0]
        pem = self._master.decrypt(stored.private_key_enc, purpose=_PURPOSE)
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover
            raise TypeError("stored signing key is not an EC key")
        return SigningKey(kid=stored.kid, private_key=private)

    def jwks(self) -> dict[str, Any]:
        """Public keys (RFC 7517 JWK Set) of every key a verifier may still meet."""
        with self._uow.read() as uow:
            keys = [json.loads(k.public_jwk) for k in uow.keys.list() if k.retired_at is None]
        return {"keys": keys}
