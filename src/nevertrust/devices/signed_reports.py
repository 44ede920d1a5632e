"""Verifying a signed posture report: a compact JWS (RFC 7515) made with the device key.

The report is ``{"sub": device id, "iat": seconds, "jti": random, "posture": {...}}``
signed ES256 (RFC 7518 section 3.4) with the private key whose public half was enrolled.
What is refused, and why:
- any algorithm but ES256 (``none``, and HS256 keyed with the public key, the classic
  confusion): the algorithm is pinned, never read from the header;
- a signature that does not verify with the device's stored key (``report-signature-invalid``);
- a report about another device (``sub`` is not the device the URL names);
- ``iat`` further than ``max_age`` from now either way (``report-stale``): a captured
  report cannot be replayed later, nor one dated ahead stored for later use;
- ``iat`` not newer than the last accepted report, or its ``jti`` (``report-replayed``);
- a posture that is not exactly the documented document (``invalid-posture``).
The verifier is a pure function; the service loads the device, calls it, stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.devices._device_jws import ALGORITHM, iat_and_jti, verified_claims
from nevertrust.devices.errors import (
    ReportMalformed,
    ReportReplayed,
    ReportSignatureInvalid,
    ReportStale,
    ReportWrongDevice,
)
from nevertrust.devices.posture import Posture, parse_posture

__all__ = ["ALGORITHM", "VerifiedReport", "verify_report"]

MAX_REPORT_BYTES = 16_000
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})


@dataclass(frozen=True, slots=True)
class VerifiedReport:
    iat: int
    jti: str
    posture: Posture


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_REPORT_BYTES or token.count(".") != 2:
        raise ReportMalformed("expected a compact JWS (header.payload.signature) as the body")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise ReportMalformed(f"the JWS header cannot be read: {exc}") from exc
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise ReportSignatureInvalid(f"expected alg {ALGORITHM}, got {alg!r}")
    if header.get("typ", "JWT") != "JWT":
        raise ReportMalformed(f"expected typ JWT, got {header.get('typ')!r}")
    unexpected = sorted(set(header) - _HEADER_KEYS)
    if unexpected:
        raise ReportMalformed(f"unexpected JWS header parameter(s): {', '.join(unexpected)}")
    return header


def verify_report(
    token: str,
    *,
    device_id: str,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    max_age: timedelta,
    last_iat: int | None,
    last_jti: str | None,
) -> VerifiedReport:
    """Check a report against the device's key and last accepted report; see the module."""
    _header(token)
    claims = verified_claims(
        token,
        public_key,
        what="report",
        forged=ReportSignatureInvalid,
        unreadable=ReportMalformed,
    )
    if claims.get("sub") != device_id:
        raise ReportWrongDevice(
            f"the report is about {claims.get('sub')!r}, sent for device {device_id!r}"
        )
    iat, jti = iat_and_jti(claims, malformed=ReportMalformed)
    now_s = int(now.timestamp())
    window = int(max_age.total_seconds())
    if now_s - iat > window:
        raise ReportStale(f"the report was made {now_s - iat} s ago; at most {window} s accepted")
    if iat - now_s > window:
        raise ReportStale(f"the report is dated {iat - now_s} s ahead; at most {window} s accepted")
    if last_jti is not None and jti == last_jti:
        raise ReportReplayed("this report (jti) was already accepted")
    if last_iat is not None and iat <= last_iat:
        raise ReportReplayed(
            f"the report (iat {iat}) is not newer than the last accepted one (iat {last_iat})"
        )
    return VerifiedReport(iat=iat, jti=jti, posture=parse_posture(claims.get("posture")))
