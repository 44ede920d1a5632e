"""Assertion signing keys: ES256 (P-256), private halves sealed with the master key.

Rotation with overlap: a rotation makes a new key the signer at once and keeps the keys
it replaces in the JWKS for an overlap, so assertions they signed (and upstreams that
have not refetched the JWKS yet) keep working. Every change is audited and announced as a
``signing-key`` change event in the same transaction, so every replica's signer follows.
The lifecycle rules themselves are pure functions in ``signing_keys``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.audit.models import Action, AuditEntry, success
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import MasterKey
from nevertrust.gateway.models import KeyView, Rotation, StoredKey
from nevertrust.gateway.signing_keys import (
    SigningKeyInUse,
    UnknownSigningKey,
    check_overlap,
    choose_active,
    is_due,
    published,
    rotation_retirements,
    view_of,
)

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["KeyService", "SigningKey"]

_PURPOSE = "assertion-signing-key"
SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


class _NotDue(Exception):
    """Raised inside a write transaction to roll it back: another process rotated first."""


class KeyService:
    """Creates, rotates and retires signing keys; serves the JWKS and the active key."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, master_key: MasterKey) -> None:
        self._uow = uow
        self._clock = clock
        self._master = master_key

    # Reading

    def active(self) -> SigningKey:
        """The key to sign with: the newest key not being replaced (created on first use).

        Every replica reading the same rows picks the same key.
        """
        with self._uow.read() as uow:
            stored = choose_active(uow.keys.list())
        if stored is None:
            stored = self._first_key()
        pem = self._master.decrypt(stored.private_key_enc, purpose=_PURPOSE)
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover
            raise TypeError("stored signing key is not an EC key")
        return SigningKey(kid=stored.kid, private_key=private)

    def jwks(self) -> dict[str, Any]:
        """Public keys (RFC 7517 JWK Set) of every key a verifier may still meet.

        The active key comes first, for verifiers that only look at the first key.
        """
        now = self._clock.now()
        with self._uow.read() as uow:
            keys = uow.keys.list()
        active = choose_active(keys)
        shown = sorted(
            (k for k in keys if published(k, now)),
            key=lambda k: (k is not active, -k.created_at.timestamp(), k.kid),
        )
        return {"keys": [json.loads(k.public_jwk) for k in shown]}

    def list(self) -> Sequence[KeyView]:
        """Every key ever used, oldest first, with its state now."""
        now = self._clock.now()
        with self._uow.read() as uow:
            keys = uow.keys.list()
        active = choose_active(keys)
        active_kid = active.kid if active else None
        return [view_of(k, active_kid=active_kid, now=now) for k in keys]

    # Changing

    def rotate(self, *, actor: str, overlap: timedelta) -> Rotation:
        """Sign with a new key from now on; the replaced keys leave the JWKS after ``overlap``.

        The overlap must outlast the assertions already issued (gateway.assertion_ttl_seconds)
        and the time upstreams take to refetch the JWKS.
        """
        check_overlap(overlap)
        new = self._new_key()  # key generation outside the transaction
        with self._uow.write() as uow:
            uow.keys.lock()
            return self._rotate(uow, uow.keys.list(), new, actor=actor, overlap=overlap)

    def rotate_if_due(
        self, *, max_age: timedelta, overlap: timedelta, actor: str = SYSTEM_ACTOR
    ) -> bool:
        """Rotate when the active key is ``max_age`` old; True when this call rotated.

        Safe to call from every replica at once: the decision is taken again under the
        key lock, so when several replicas find the key due, one rotates and the others,
        seeing the new key, do nothing. A ``max_age`` of zero (rotation "only by hand")
        never rotates.
        """
        if max_age <= timedelta(0):
            return False
        check_overlap(overlap)
        now = self._clock.now()
        with self._uow.read() as uow:
            if not is_due(choose_active(uow.keys.list()), now=now, max_age=max_age):
                return False  # the common case: no write transaction, no lock
        new = self._new_key()
        try:
            with self._uow.write() as uow:
                uow.keys.lock()
                keys = uow.keys.list()
                if not is_due(choose_active(keys), now=now, max_age=max_age):
                    raise _NotDue
                self._rotate(uow, keys, new, actor=actor, overlap=overlap, automatic=True)
        except _NotDue:
            return False
        return True

    def retire(self, kid: str, *, actor: str) -> KeyView:
        """Remove a key from the JWKS now: assertions it signed stop verifying at once
        (after upstreams refetch the JWKS). For a key that may be compromised.

        Raises:
            UnknownSigningKey: no key has this kid.
            SigningKeyInUse: it is the active key; rotate first, then retire it.
        """
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.keys.lock()
            keys = uow.keys.list()
            key = next((k for k in keys if k.kid == kid), None)
            if key is None:
                raise UnknownSigningKey(f"no signing key with kid {kid!r}", kid=kid)
            active = choose_active(keys)
            if active is not None and active.kid == kid:
                raise SigningKeyInUse(
                    f"signing key {kid} is the active key: rotate first "
                    "(nevertrust signing-keys rotate), then retire it"
                )
            if not published(key, now):
                return view_of(key, active_kid=None, now=now)  # already gone: nothing to do
            uow.keys.set_retired_at(kid, now)
            uow.audit.append(
                [
                    success(
                        Action.SIGNING_KEY_RETIRED,
                        ts=now,
                        actor=actor,
                        target=f"signing-key:{kid}",
                        scheduled_for=key.retired_at.isoformat() if key.retired_at else None,
                    )
                ]
            )
            active_kid = active.kid if active else ""
            uow.changes.record(ChangeEvent(Topic.SIGNING_KEY, active_kid), now=now)
        return view_of(replace(key, retired_at=now), active_kid=None, now=now)

    # Internals

    def _first_key(self) -> StoredKey:
        new = self._new_key()
        with self._uow.write() as uow:
            uow.keys.lock()
            keys = uow.keys.list()
            found = choose_active(keys)
            if found is not None:  # another process created or rotated meanwhile
                return found
            self._rotate(uow, keys, new, actor=SYSTEM_ACTOR, overlap=timedelta(0))
        return new

    def _rotate(
        self,
        uow: UnitOfWork,
        keys: Sequence[StoredKey],
        new: StoredKey,
        *,
        actor: str,
        overlap: timedelta,
        automatic: bool = False,
    ) -> Rotation:
        now = self._clock.now()
        previous = choose_active(keys)
        ends = rotation_retirements(keys, now=now, overlap=overlap)
        for kid, at in ends.items():
            uow.keys.set_retired_at(kid, at)
        uow.keys.insert(new)
        uow.audit.append([self._record(new, previous, ends, now, actor, overlap, automatic)])
        uow.changes.record(ChangeEvent(Topic.SIGNING_KEY, new.kid), now=now)
        replaced = tuple(
            view_of(replace(k, retired_at=ends[k.kid]), active_kid=new.kid, now=now)
            for k in keys
            if k.kid in ends
        )
        return Rotation(active=view_of(new, active_kid=new.kid, now=now), replaced=replaced)

    @staticmethod
    def _record(
        new: StoredKey,
        previous: StoredKey | None,
        ends: Mapping[str, datetime],
        now: datetime,
        actor: str,
        overlap: timedelta,
        automatic: bool,
    ) -> AuditEntry:
        if previous is None:
            return success(
                Action.SIGNING_KEY_CREATED, ts=now, actor=actor, target=f"signing-key:{new.kid}"
            )
        return success(
            Action.SIGNING_KEY_ROTATED,
            ts=now,
            actor=actor,
            target=f"signing-key:{new.kid}",
            previous=previous.kid,
            automatic=automatic,
            overlap_seconds=int(overlap.total_seconds()),
            retiring={kid: at.isoformat() for kid, at in sorted(ends.items())},
        )

    def _new_key(self) -> StoredKey:
        private = ec.generate_private_key(ec.SECP256R1())
        # Hex, not base64url: a kid that starts with "-" reads as an option on the command
        # line (`nevertrust signing-keys retire KID`).
        kid = secrets.token_hex(8)
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
