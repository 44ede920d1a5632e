"""Reports are compact JWS, ES256, verifiable with the enrolled public key only."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.agent import AgentHomeUnsafe
from nevertrust.agent.signing import (
    load_private_key,
    new_private_key,
    private_key_pem,
    public_key_pem,
    sign_report,
)


def test_a_report_verifies_with_the_public_key_sent_at_enrolment() -> None:
    key = new_private_key()
    public = serialization.load_pem_public_key(public_key_pem(key).encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    token = sign_report(key, device_id="dev_x", iat=1_764_072_000, posture={"platform": "linux"})
    assert token.count(".") == 2
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}
    claims = jwt.decode(token, public, algorithms=["ES256"], options={"verify_iat": False})
    assert claims["sub"] == "dev_x" and claims["iat"] == 1_764_072_000
    assert claims["posture"] == {"platform": "linux"}
    assert len(claims["jti"]) >= 16


def test_each_report_has_a_fresh_jti() -> None:
    key = new_private_key()
    one, two = (sign_report(key, device_id="d", iat=1, posture={}) for _ in range(2))
    jti = [jwt.decode(t, options={"verify_signature": False})["jti"] for t in (one, two)]
    assert jti[0] != jti[1]


def test_another_key_does_not_verify() -> None:
    token = sign_report(new_private_key(), device_id="d", iat=1, posture={})
    other = new_private_key().public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["ES256"], options={"verify_iat": False})


def test_the_key_file_round_trips_and_other_curves_are_refused() -> None:
    key = new_private_key()
    assert load_private_key(private_key_pem(key)).private_numbers() == key.private_numbers()
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(AgentHomeUnsafe, match="P-256"):
        load_private_key(p384)
    with pytest.raises(AgentHomeUnsafe):
        load_private_key(b"not a key")
