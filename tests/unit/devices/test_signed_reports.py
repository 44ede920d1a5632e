"""Signed posture reports, verified with real keys: what is accepted and what is refused."""

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

from nevertrust.devices import (
    InvalidPosture,
    ReportMalformed,
    ReportReplayed,
    ReportSignatureInvalid,
    ReportStale,
    ReportWrongDevice,
)
from nevertrust.devices.signed_reports import VerifiedReport, verify_report
from tests.soft_device import SoftDevice, posture

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(seconds=300)
DEVICE = "dev_testdevice000000"


@pytest.fixture
def device() -> SoftDevice:
    soft = SoftDevice()
    soft.device_id = DEVICE
    return soft


def verify(
    device: SoftDevice, token: str, *, last_iat: int | None = None, last_jti: str | None = None
) -> VerifiedReport:
    return verify_report(
        token,
        device_id=DEVICE,
        public_key=device.key.public_key(),
        now=NOW,
        max_age=MAX_AGE,
        last_iat=last_iat,
        last_jti=last_jti,
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signature)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": DEVICE, "iat": int(NOW.timestamp()), "jti": "j" * 16, "posture": posture()}
    return {**base, **overrides}


def test_a_report_signed_by_the_device_key_is_accepted(device: SoftDevice) -> None:
    verified = verify(device, device.report(at=NOW - timedelta(seconds=5), jti="abcdefgh12"))
    assert verified.iat == int(NOW.timestamp()) - 5
    assert verified.jti == "abcdefgh12"
    assert verified.posture.platform == "linux"


def test_a_report_signed_by_another_key_is_refused_as_forged(device: SoftDevice) -> None:
    forged = device.report(at=NOW, key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ReportSignatureInvalid):
        verify(device, forged)


def test_alg_none_is_refused(device: SoftDevice) -> None:
    with pytest.raises(ReportSignatureInvalid, match="expected alg ES256, got 'none'"):
        verify(device, handmade({"alg": "none", "typ": "JWT"}, claims()))


def test_hs256_keyed_with_the_public_key_is_refused(device: SoftDevice) -> None:
    """The classic algorithm confusion: an attacker knows the public key and MACs with it."""
    token = handmade({"alg": "HS256", "typ": "JWT"}, claims())
    head, body, _ = token.split(".")
    mac = hmac.new(device.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    with pytest.raises(ReportSignatureInvalid, match="expected alg ES256, got 'HS256'"):
        verify(device, f"{head}.{body}.{b64(mac.digest())}")


def test_another_ec_algorithm_is_refused(device: SoftDevice) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    token = jwt.encode(claims(), p384, algorithm="ES384")
    with pytest.raises(ReportSignatureInvalid, match="ES384"):
        verify(device, token)


def test_a_signature_moved_onto_other_claims_is_refused(device: SoftDevice) -> None:
    good = device.report(at=NOW)
    head, _, signature = good.split(".")
    other = b64(json.dumps(claims(posture=posture(disk_encrypted=True, os_version="99"))).encode())
    with pytest.raises(ReportSignatureInvalid):
        verify(device, f"{head}.{other}.{signature}")


def test_a_report_about_another_device_is_refused(device: SoftDevice) -> None:
    with pytest.raises(ReportWrongDevice, match="dev_other"):
        verify(device, device.report(at=NOW, device_id="dev_other"))


@pytest.mark.parametrize("offset", [301, 3600, -301])
def test_a_report_outside_the_time_window_is_stale(device: SoftDevice, offset: int) -> None:
    with pytest.raises(ReportStale):
        verify(device, device.report(at=NOW - timedelta(seconds=offset)))


def test_the_window_edges_are_accepted(device: SoftDevice) -> None:
    verify(device, device.report(at=NOW - MAX_AGE))
    verify(device, device.report(at=NOW + MAX_AGE))


def test_a_report_not_newer_than_the_last_accepted_one_is_replayed(device: SoftDevice) -> None:
    last = int(NOW.timestamp()) - 10
    with pytest.raises(ReportReplayed, match="not newer"):
        verify(device, device.report(at=NOW - timedelta(seconds=10)), last_iat=last)
    with pytest.raises(ReportReplayed, match="not newer"):
        verify(device, device.report(at=NOW - timedelta(seconds=11)), last_iat=last)
    verify(device, device.report(at=NOW - timedelta(seconds=9)), last_iat=last)


def test_a_seen_jti_is_replayed_even_if_dated_later(device: SoftDevice) -> None:
    with pytest.raises(ReportReplayed, match="jti"):
        verify(device, device.report(at=NOW, jti="seen-before-1"), last_jti="seen-before-1")


@pytest.mark.parametrize(
    ("token_claims", "message"),
    [
        (claims(iat="1764072000"), "iat"),
        (claims(iat=1764072000.5), "iat"),
        ({k: v for k, v in claims().items() if k != "iat"}, "iat"),
        (claims(jti="short"), "jti"),
        ({k: v for k, v in claims().items() if k != "jti"}, "jti"),
    ],
)
def test_missing_or_mistyped_claims_are_malformed(
    device: SoftDevice, token_claims: dict[str, Any], message: str
) -> None:
    token = jwt.encode(token_claims, device.key, algorithm="ES256")
    with pytest.raises(ReportMalformed, match=message):
        verify(device, token)


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jws", "a.b", "a.b.c.d", "!!!.???.***", "x" * 20_000],
)
def test_something_that_is_not_a_compact_jws_is_malformed(device: SoftDevice, token: str) -> None:
    with pytest.raises(ReportMalformed):
        verify(device, token)


def test_header_parameters_that_could_name_another_key_are_refused(device: SoftDevice) -> None:
    token = jwt.encode(
        claims(), device.key, algorithm="ES256", headers={"jku": "https://evil.example/k"}
    )
    with pytest.raises(ReportMalformed, match="jku"):
        verify(device, token)


def test_a_signed_report_with_a_malformed_posture_is_refused_naming_the_field(
    device: SoftDevice,
) -> None:
    with pytest.raises(InvalidPosture, match=r"^posture\.platform:"):
        verify(device, device.report(posture(platform="beos"), at=NOW))
    with pytest.raises(InvalidPosture, match=r"^posture\.extra:"):
        verify(device, device.report({**posture(), "extra": 1}, at=NOW))
