"""What every token a device signs shares: ES256 with the device key, ``iat`` and ``jti``.

Posture reports (``signed_reports``) and browser-binding proofs (``browser_binding``) are
both compact JWS made by the agent with the device key. The signature check (algorithm
pinned, never read from the header) and the shape of ``iat`` and ``jti`` are decided here
once; each caller keeps its own errors, claims and time rules.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.errors import NeverTrustError

__all__ = ["ALGORITHM", "iat_and_jti", "verified_claims"]

ALGORITHM = "ES256"
# Only the signature is PyJWT's to check: time claims are checked against the clock the
# service is given, and the rest by the caller.
_SIGNATURE_ONLY: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def verified_claims(
    token: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    what: str,
    forged: type[NeverTrustError],
    unreadable: type[NeverTrustError],
) -> dict[str, Any]:
    """The claims of ``token`` if the device key signed it (ES256); ``what`` names it in
    the messages ("report", "proof")."""
    try:
        claims = jwt.decode(token, key=public_key, algorithms=[ALGORITHM], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError as exc:
        raise forged(f"the {what} is not signed by this device's key") from exc
    except jwt.InvalidTokenError as exc:
        raise unreadable(f"the {what} cannot be read: {exc}") from exc
    return dict(claims)


def iat_and_jti(claims: dict[str, Any], *, malformed: type[NeverTrustError]) -> tuple[int, str]:
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise malformed("claim iat: expected integer seconds since the epoch")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise malformed("claim jti: expected a random string of 8 to 200 characters")
    return iat, jti
