"""The proof that lets a browser register a passkey as a device's platform credential.

A browser cannot show the device certificate the way the CLI and the tunnel do, so the
browser is bound once instead: ``nevertrust agent bind-browser`` (on the device, with the
device key) signs a short proof, the user opens the link it prints in a browser on the
same machine, and the portal registers a platform passkey (one that lives in this
machine's authenticator and cannot leave it) as that device's. Sessions opened with that
passkey carry the device, and the gateway decides on the device's state per request.

The proof is a compact JWS, ES256 with the device key, header ``{"alg": "ES256", "typ":
"JWT"}``, claims ``sub`` (device id), ``iat``, ``jti`` and ``purpose: "bind-browser"``.
Refused (``BindProofRefused``): any other algorithm (pinned, never read from the header),
a signature the device's stored key does not verify, another purpose (a posture report is
not a bind proof), ``iat`` further than the window from now either way, and, in the
service, a proof not newer than the last one spent for the device (one proof, one bind).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.devices._device_jws import ALGORITHM, iat_and_jti, verified_claims
from nevertrust.devices.errors import BindProofRefused

__all__ = ["BIND_PURPOSE", "MAX_PROOF_CHARS", "proof_device_id", "verify_bind_proof"]

BIND_PURPOSE = "bind-browser"
MAX_PROOF_CHARS = 2_000
_HEADER_KEYS = frozenset({"alg", "typ"})


def proof_device_id(token: str) -> str:
    """The device the proof names, unverified: only to find the key to verify it with."""
    if not isinstance(token, str) or len(token) > MAX_PROOF_CHARS or token.count(".") != 2:
        raise BindProofRefused(
            "the link's proof is not a device-signed token: run the command again"
        )
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise BindProofRefused(f"the link's proof cannot be read: {exc}") from exc
    if header.get("alg") != ALGORITHM:
        raise BindProofRefused(f"the proof must be signed {ALGORITHM}, got {header.get('alg')!r}")
    if set(header) - _HEADER_KEYS or header.get("typ", "JWT") != "JWT":
        raise BindProofRefused("the proof's header has parameters a bind proof does not have")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 40:
        raise BindProofRefused("the proof names no device (claim sub)")
    return sub


def verify_bind_proof(
    token: str,
    *,
    device_id: str,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    window: timedelta,
) -> int:
    """Check the proof's signature, purpose and age; returns its ``iat`` (the replay key)."""
    if proof_device_id(token) != device_id:
        raise BindProofRefused("the proof is about another device")
    claims = verified_claims(
        token, public_key, what="proof", forged=BindProofRefused, unreadable=BindProofRefused
    )
    if claims.get("purpose") != BIND_PURPOSE:
        raise BindProofRefused(
            f"the token is not a browser-binding proof (purpose {claims.get('purpose')!r})"
        )
    iat, _ = iat_and_jti(claims, malformed=BindProofRefused)
    age = int(now.timestamp()) - iat
    limit = int(window.total_seconds())
    if age > limit:
        raise BindProofRefused(
            f"the link was made {age} s ago and is good for {limit} s: run "
            "'nevertrust agent bind-browser' again"
        )
    if -age > limit:
        raise BindProofRefused(f"the proof is dated {-age} s ahead; at most {limit} s accepted")
    return iat
