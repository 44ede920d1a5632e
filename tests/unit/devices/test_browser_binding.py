"""The bind proof of ``nevertrust agent bind-browser``, verified with real keys.

The proof is what lets a browser become a device's: whoever can forge one, replay an old
one or pass off another device-signed token as one could make any browser count as a
compliant device. So everything but a fresh ES256 proof of this purpose by this device's
key is refused, and the refusal says what was wrong in words the user can act on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.agent.signing import new_private_key, public_key_pem, sign_bind_proof, sign_report
from nevertrust.devices.browser_binding import (
    MAX_PROOF_CHARS,
    proof_device_id,
    verify_bind_proof,
)
from nevertrust.devices.errors import BindProofRefused

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
IAT = int(NOW.timestamp())
WINDOW = timedelta(seconds=300)
DEVICE = "dev_testdevice000000"
# One key for the module: hypothesis examples must not depend on function fixtures.
KEY = new_private_key()


def verify(token: str, *, now: datetime = NOW, device_id: str = DEVICE) -> int:
    return verify_bind_proof(
        token, device_id=device_id, public_key=KEY.public_key(), now=now, window=WINDOW
    )


def refused(token: str, *, now: datetime = NOW) -> str:
    """The message a user would read for ``token``."""
    with pytest.raises(BindProofRefused) as caught:
        verify(token, now=now)
    assert caught.value.code == "device-bind-proof-refused"
    return caught.value.message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """The claims the agent signs, with ``changes`` (None removes a claim)."""
    base: dict[str, Any] = {
        "sub": DEVICE,
        "iat": IAT,
        "jti": "a-random-jti-0123456789",
        "purpose": "bind-browser",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(
    body: dict[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey = KEY,
    headers: dict[str, Any] | None = None,
) -> str:
    """A real ES256 signature over claims the agent would never produce."""
    return jwt.encode(body, key, algorithm="ES256", headers={"typ": "JWT", **(headers or {})})


def handmade(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.{b64(signature)}"


# ---- accepted


def test_the_agents_proof_is_accepted_and_gives_its_iat() -> None:
    """The iat is what the service keeps to spend each proof once."""
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT - 10)
    assert proof_device_id(token) == DEVICE
    assert verify(token) == IAT - 10


@given(offset=st.integers(min_value=-300, max_value=300))
def test_a_proof_dated_within_the_window_either_way_is_accepted(offset: int) -> None:
    """Clocks of a laptop and the server disagree a little, in either direction."""
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT + offset)
    assert verify(token) == IAT + offset


# ---- forged or confused


def test_a_proof_signed_by_another_key_is_refused() -> None:
    forged = sign_bind_proof(new_private_key(), device_id=DEVICE, iat=IAT)
    assert "not signed by this device's key" in refused(forged)


def test_alg_none_is_refused_before_any_key_is_looked_up() -> None:
    token = handmade({"alg": "none", "typ": "JWT"}, claims())
    with pytest.raises(BindProofRefused, match="must be signed ES256, got 'none'"):
        proof_device_id(token)
    assert "got 'none'" in refused(token)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    """The classic confusion: a verifier that takes the algorithm from the header would
    check this HMAC with the (public) PEM as the secret and accept it."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(public_key_pem(KEY).encode(), f"{header}.{body}".encode(), hashlib.sha256)
    token = f"{header}.{body}.{b64(mac.digest())}"
    assert "must be signed ES256, got 'HS256'" in refused(token)


def test_a_posture_report_is_not_a_bind_proof() -> None:
    """Same key, same format: only the purpose tells them apart."""
    report = sign_report(KEY, device_id=DEVICE, iat=IAT, posture={"platform": "linux"})
    assert "not a browser-binding proof" in refused(report)


def test_a_proof_without_a_purpose_is_refused() -> None:
    assert "purpose None" in refused(signed(claims(purpose=None)))


def test_a_proof_for_another_purpose_is_refused() -> None:
    assert "purpose 'login'" in refused(signed(claims(purpose="login")))


def test_a_proof_about_another_device_is_refused() -> None:
    """Signed by this key but naming another device: the binding would go to the wrong
    device, so it is refused before the signature is even checked."""
    token = sign_bind_proof(KEY, device_id="dev_someoneelse00000", iat=IAT)
    assert proof_device_id(token) == "dev_someoneelse00000"
    assert "another device" in refused(token)


@pytest.mark.parametrize("sub", [None, "", 42, "d" * 41])
def test_a_proof_that_names_no_device_is_refused(sub: object) -> None:
    with pytest.raises(BindProofRefused, match="names no device"):
        proof_device_id(signed(claims(sub=sub)))


# ---- age


def test_a_proof_older_than_the_window_says_to_run_the_command_again() -> None:
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT - 301)
    message = refused(token)
    assert "301 s ago" in message and "good for 300 s" in message
    assert "'nevertrust agent bind-browser' again" in message


def test_a_proof_dated_ahead_beyond_the_window_is_refused() -> None:
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT + 301)
    message = refused(token)
    assert "dated 301 s ahead" in message and "at most 300 s" in message


@given(beyond=st.integers(min_value=1, max_value=10**7), ahead=st.booleans())
def test_any_proof_outside_the_window_is_refused(beyond: int, ahead: bool) -> None:
    offset = 300 + beyond
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT + (offset if ahead else -offset))
    with pytest.raises(BindProofRefused):
        verify(token)


# ---- malformed


@pytest.mark.parametrize(
    "token",
    [
        "",
        "only.two",
        "four.parts.are.many",
        "a" * 10,
        "x." * 1000 + "x",  # many dots
    ],
)
def test_a_token_not_made_of_three_parts_is_refused(token: str) -> None:
    with pytest.raises(BindProofRefused, match="not a device-signed token: run the command"):
        proof_device_id(token)


def test_an_overlong_token_is_refused_before_it_is_parsed() -> None:
    token = "a" * MAX_PROOF_CHARS + ".b.c"
    with pytest.raises(BindProofRefused, match="not a device-signed token"):
        proof_device_id(token)


@pytest.mark.parametrize(
    "token",
    [
        "x.y.z",
        "!!!.???.###",
        b64(b"not json") + "." + b64(b"{}") + ".",
        b64(b'["a", "list"]') + "." + b64(b"{}") + ".",
        b64(json.dumps({"alg": "ES256"}).encode()) + "." + b64(b"not json") + ".",
    ],
)
def test_garbage_in_three_parts_is_refused_as_unreadable(token: str) -> None:
    with pytest.raises(BindProofRefused, match="cannot be read"):
        verify(token)


def test_a_valid_looking_proof_with_a_damaged_signature_is_refused() -> None:
    token = sign_bind_proof(KEY, device_id=DEVICE, iat=IAT)
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert "not signed by this device's key" in refused(f"{head}.{body}.{flipped}")


@pytest.mark.parametrize(
    "extra",
    [
        {"kid": "k1"},
        {"jku": "https://attacker.example/keys"},
        {"jwk": {"kty": "EC"}},
        {"x5u": "https://attacker.example/cert.pem"},
        {"typ": "JOSE"},
    ],
)
def test_header_parameters_a_proof_does_not_have_are_refused(extra: dict[str, Any]) -> None:
    """A key named or carried in the header must never be the one that decides."""
    token = signed(claims(), headers=extra)
    with pytest.raises(BindProofRefused, match="header has parameters"):
        proof_device_id(token)


# ---- claims


@pytest.mark.parametrize("jti", [None, "", "short12", 12345678, "j" * 201])
def test_a_missing_or_short_jti_is_refused(jti: object) -> None:
    message = refused(signed(claims(jti=jti)))
    assert "claim jti" in message and "8 to 200 characters" in message


@pytest.mark.parametrize("iat", [True, False, float(IAT), str(IAT), None, [IAT]])
def test_a_non_integer_iat_is_refused(iat: object) -> None:
    """A bool is an int in Python; it must not read as 1 (or 0) seconds since 1970."""
    assert "claim iat: expected integer seconds" in refused(signed(claims(iat=iat)))
