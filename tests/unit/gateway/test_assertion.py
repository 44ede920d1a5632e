from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.gateway import AssertionSigner, InvalidAssertion, SigningKey, verify_assertion

VECTORS = Path(__file__).parents[2] / "vectors" / "assertion"
ISSUER = "http://auth.localhost:8080"
AUDIENCE = "http://whoami.localhost:8080"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _jwks_for(private: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, alg="ES256", use="sig")
    return {"keys": [jwk]}


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def jwks(private_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return _jwks_for(private_key, "kid-1")


@pytest.fixture(scope="module")
def signer(private_key: ec.EllipticCurvePrivateKey) -> AssertionSigner:
    return AssertionSigner(
        key=SigningKey(kid="kid-1", private_key=private_key), issuer=ISSUER, ttl_seconds=TTL
    )


def sign(signer: AssertionSigner, *, audience: str = AUDIENCE, now: datetime = NOW) -> str:
    return signer.sign(
        audience=audience,
        subject="42",
        name="alice",
        groups=["engineering", "ops"],
        email="alice@example.com",
        auth_methods=["pwd"],
        auth_time=now - timedelta(minutes=5),
        now=now,
    )


def verify(token: str, jwks: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "jwks": jwks,
        "expected_issuer": ISSUER,
        "expected_audience": AUDIENCE,
        "now": NOW,
    }
    kwargs.update(overrides)
    return verify_assertion(token, **kwargs)


def test_signed_assertion_verifies_and_carries_identity(
    signer: AssertionSigner, jwks: dict[str, Any]
) -> None:
    claims = verify(sign(signer), jwks)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "42"
    assert claims["name"] == "alice"
    assert claims["groups"] == ["engineering", "ops"]
    assert claims["email"] == "alice@example.com"
    assert claims["amr"] == ["pwd"]
    assert claims["iat"] == claims["nbf"] == int(NOW.timestamp())
    assert claims["exp"] == int(NOW.timestamp()) + TTL
    assert claims["auth_time"] == int((NOW - timedelta(minutes=5)).timestamp())


def test_assertion_header_names_algorithm_and_key(signer: AssertionSigner) -> None:
    header = jwt.get_unverified_header(sign(signer))
    assert header["alg"] == "ES256"
    assert header["kid"] == "kid-1"


def test_each_assertion_has_a_fresh_jti(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    assert verify(sign(signer), jwks)["jti"] != verify(sign(signer), jwks)["jti"]


@pytest.mark.parametrize("offset", [0, TTL, TTL + 5, -5])
def test_accepts_within_lifetime_and_leeway(
    signer: AssertionSigner, jwks: dict[str, Any], offset: int
) -> None:
    token = sign(signer)
    assert verify(token, jwks, now=NOW + timedelta(seconds=offset))["sub"] == "42"


def test_rejects_expired_assertion(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    token = sign(signer)
    with pytest.raises(InvalidAssertion, match="expired"):
        verify(token, jwks, now=NOW + timedelta(seconds=TTL + 6))


def test_rejects_expired_assertion_with_zero_leeway(
    signer: AssertionSigner, jwks: dict[str, Any]
) -> None:
    with pytest.raises(InvalidAssertion, match="expired"):
        verify(sign(signer), jwks, now=NOW + timedelta(seconds=TTL + 1), leeway_seconds=0)


def test_rejects_assertion_not_yet_valid(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    token = sign(signer)
    with pytest.raises(InvalidAssertion, match="not yet valid"):
        verify(token, jwks, now=NOW - timedelta(seconds=6))


def test_rejects_wrong_audience(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    token = sign(signer, audience="http://wiki.localhost:8080")
    with pytest.raises(InvalidAssertion, match="(?i)audience"):
        verify(token, jwks)


def test_rejects_wrong_issuer(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    with pytest.raises(InvalidAssertion, match="issuer"):
        verify(sign(signer), jwks, expected_issuer="http://auth.evil.com")


def test_rejects_unknown_key_id(signer: AssertionSigner, private_key: Any) -> None:
    other_jwks = _jwks_for(private_key, "kid-2")
    with pytest.raises(InvalidAssertion, match="unknown key 'kid-1'"):
        verify(sign(signer), other_jwks)


def test_rejects_when_jwks_is_empty(signer: AssertionSigner) -> None:
    with pytest.raises(InvalidAssertion, match="unknown key"):
        verify(sign(signer), {"keys": []})


def test_rejects_signature_from_another_key_under_a_known_kid(
    jwks: dict[str, Any],
) -> None:
    impostor = AssertionSigner(
        key=SigningKey(kid="kid-1", private_key=ec.generate_private_key(ec.SECP256R1())),
        issuer=ISSUER,
        ttl_seconds=TTL,
    )
    with pytest.raises(InvalidAssertion, match="Signature verification failed"):
        verify(sign(impostor), jwks)


def test_rejects_tampered_payload(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    header, payload, signature = sign(signer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["admins"]
    forged = f"{header}.{_segment(claims)}.{signature}"
    with pytest.raises(InvalidAssertion, match="Signature verification failed"):
        verify(forged, jwks)


def test_rejects_alg_none(signer: AssertionSigner, jwks: dict[str, Any]) -> None:
    _, payload, _ = sign(signer).split(".")
    token = _segment({"alg": "none", "typ": "JWT", "kid": "kid-1"}) + "." + payload + "."
    with pytest.raises(InvalidAssertion, match="algorithm must be ES256, got 'none'"):
        verify(token, jwks)


def test_rejects_hs256_signed_with_the_public_key(
    signer: AssertionSigner, private_key: ec.EllipticCurvePrivateKey, jwks: dict[str, Any]
) -> None:
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, payload, _ = sign(signer).split(".")
    signing_input = _segment({"alg": "HS256", "typ": "JWT", "kid": "kid-1"}) + "." + payload
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidAssertion, match="algorithm must be ES256, got 'HS256'"):
        verify(f"{signing_input}.{_b64(mac)}", jwks)


def test_rejects_es256_header_on_an_hmac_signature(
    signer: AssertionSigner, private_key: ec.EllipticCurvePrivateKey, jwks: dict[str, Any]
) -> None:
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, payload, _ = sign(signer).split(".")
    signing_input = _segment({"alg": "ES256", "typ": "JWT", "kid": "kid-1"}) + "." + payload
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidAssertion):
        verify(f"{signing_input}.{_b64(mac)}", jwks)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "not.a.jwt.at.all", "eyJhbGciOiJFUzI1NiJ9", "....", "\x00"],
    ids=["empty", "word", "three_junk_segments", "five_segments", "header_only", "dots", "nul"],
)
def test_rejects_garbage(jwks: dict[str, Any], token: str) -> None:
    with pytest.raises(InvalidAssertion):
        verify(token, jwks)


def test_rejects_token_missing_required_claims(
    private_key: ec.EllipticCurvePrivateKey, jwks: dict[str, Any]
) -> None:
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "iat": int(NOW.timestamp())},
        private_key,
        algorithm="ES256",
        headers={"kid": "kid-1"},
    )
    with pytest.raises(InvalidAssertion, match="exp"):
        verify(token, jwks)


def test_invalid_assertion_is_an_unauthenticated_error() -> None:
    assert InvalidAssertion.code == "invalid-assertion"
    assert InvalidAssertion.http_status == 401


# Captured vectors: a fixed JWKS and tokens, so a verifier change that stops accepting
# real assertions (or starts accepting forgeries) shows up without regenerating keys.

VECTOR_ISSUER = "http://auth.localhost:8080"
VECTOR_AUDIENCE = "http://whoami.localhost:8080"


def _vector(name: str) -> str:
    return (VECTORS / name).read_text().strip()


@pytest.fixture(scope="module")
def vector_jwks() -> dict[str, Any]:
    return json.loads((VECTORS / "jwks.json").read_text())  # type: ignore[no-any-return]


def test_vector_assertion_verifies_against_captured_jwks(vector_jwks: dict[str, Any]) -> None:
    expected = json.loads((VECTORS / "es256_valid.claims.json").read_text())
    claims = verify_assertion(
        _vector("es256_valid.jwt"),
        jwks=vector_jwks,
        expected_issuer=VECTOR_ISSUER,
        expected_audience=VECTOR_AUDIENCE,
        now=NOW,
    )
    assert claims == expected


def test_vector_assertion_expires_after_its_ttl(vector_jwks: dict[str, Any]) -> None:
    with pytest.raises(InvalidAssertion, match="expired"):
        verify_assertion(
            _vector("es256_valid.jwt"),
            jwks=vector_jwks,
            expected_issuer=VECTOR_ISSUER,
            expected_audience=VECTOR_AUDIENCE,
            now=NOW + timedelta(hours=1),
        )


@pytest.mark.parametrize(
    ("name", "alg"),
    [("alg_none.jwt", "none"), ("hs256_public_key_as_secret.jwt", "HS256")],
)
def test_vector_forgeries_are_rejected(vector_jwks: dict[str, Any], name: str, alg: str) -> None:
    with pytest.raises(InvalidAssertion, match=f"algorithm must be ES256, got '{alg}'"):
        verify_assertion(
            _vector(name),
            jwks=vector_jwks,
            expected_issuer=VECTOR_ISSUER,
            expected_audience=VECTOR_AUDIENCE,
            now=NOW,
        )


def test_vector_hs256_forgery_really_is_keyed_with_the_public_key() -> None:
    """Guard the vector itself: it must be a correct HMAC over the captured PEM."""
    token = _vector("hs256_public_key_as_secret.jwt")
    signing_input, _, signature = token.rpartition(".")
    pem = (VECTORS / "public_key.pem").read_bytes()
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64(mac), signature)
