"""The signed identity assertion the gateway adds to every proxied request.

A JWT (RFC 7519) signed with ES256 (RFC 7518 §3.4) and short-lived. Upstreams verify it
against the JWKS the portal publishes. ``verify_assertion`` pins the algorithm to ES256,
so ``alg: none`` and HS256-keyed-with-the-public-key forgeries are rejected before any
signature check (RFC 8725 §2.1, §3.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jwt

from nevertrust.crypto import new_token
from nevertrust.errors import Unauthenticated
from nevertrust.gateway.keys import SigningKey

__all__ = [
    "ASSERTION_HEADER",
    "AssertionSigner",
    "InvalidAssertion",
    "verify_assertion",
]

ASSERTION_HEADER = "x-nevertrust-assertion"
_ALGORITHM = "ES256"


class InvalidAssertion(Unauthenticated):
    code = "invalid-assertion"


class AssertionSigner:
    def __init__(self, *, key: SigningKey, issuer: str, ttl_seconds: int) -> None:
        self._key = key
        self._issuer = issuer
        self.ttl_seconds = ttl_seconds

    def sign(
        self,
        *,
        audience: str,
        subject: str,
        name: str,
        groups: Sequence[str],
        email: str,
        auth_methods: Sequence[str],
        auth_time: datetime,
        now: datetime,
    ) -> str:
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_seconds,
            "jti": new_token()[:22],
            "name": name,
            "groups": list(groups),
            "email": email,
            "amr": list(auth_methods),
            "auth_time": int(auth_time.timestamp()),
        }
        return jwt.encode(
            claims, self._key.private_key, algorithm=_ALGORITHM, headers={"kid": self._key.kid}
        )


def verify_assertion(
    token: str,
    *,
    jwks: Mapping[str, Any],
    expected_issuer: str,
    expected_audience: str,
    now: datetime,
    leeway_seconds: int = 5,
) -> dict[str, Any]:
    """Verify an assertion and return its claims.

    Raises:
        InvalidAssertion: wrong algorithm, unknown key, bad signature, wrong issuer or
            audience, expired or not yet valid, or missing claims.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidAssertion(f"assertion is not a JWT: {exc}") from exc
    if header.get("alg") != _ALGORITHM:
        raise InvalidAssertion(
            f"assertion algorithm must be {_ALGORITHM}, got {header.get('alg')!r}"
        )
    kid = header.get("kid")
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None)
    if jwk is None:
        raise InvalidAssertion(f"assertion signed with unknown key {kid!r}")
    try:
        key = jwt.PyJWK(jwk, algorithm=_ALGORITHM)
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[_ALGORITHM],
            audience=expected_audience,
            issuer=expected_issuer,
            leeway=leeway_seconds,
            # Time is checked below against ``now``: the verifier reads no clock itself.
            options={
                "require": ["exp", "iat", "iss", "aud", "sub"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidAssertion(f"assertion rejected: {exc}") from exc
    stamp = now.timestamp()
    if not isinstance(claims["exp"], int | float) or stamp > claims["exp"] + leeway_seconds:
        raise InvalidAssertion("assertion rejected: expired")
    if stamp + leeway_seconds < claims.get("nbf", claims["iat"]):
        raise InvalidAssertion("assertion rejected: not yet valid")
    return claims
