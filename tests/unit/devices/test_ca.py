"""The device CA: what it issues, and which client certificates it accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nevertrust.clock import FixedClock
from nevertrust.devices import (
    CertificateRefused,
    DeviceCA,
    InvalidPublicKey,
    device_id_from_certificate,
    load_device_public_key,
)
from tests.soft_device import SoftDevice

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


@pytest.fixture(scope="module")
def ca() -> DeviceCA:
    return DeviceCA.create(clock=FixedClock(NOW))


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def test_the_ca_is_a_p256_ca_for_ten_years_that_signs_end_entities_only(ca: DeviceCA) -> None:
    cert = ca.certificate
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc - NOW >= timedelta(days=3649)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    cert.verify_directly_issued_by(cert)


def test_a_device_certificate_names_the_device_for_client_auth_and_lives_its_hours(
    ca: DeviceCA,
) -> None:
    device = SoftDevice()
    issued = ca.issue(device_id="dev_abc", public_key=device.key.public_key(), lifetime=DAY)
    cert = x509.load_pem_x509_certificate(issued.pem.encode())

    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev_abc"
    assert device_id_from_certificate(cert) == "dev_abc"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:nevertrust:device:dev_abc"
    ]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc == NOW + DAY == issued.not_after
    assert issued.serial == format(cert.serial_number, "x")
    assert cert.public_key() == device.key.public_key()


def test_serials_are_random(ca: DeviceCA) -> None:
    key = SoftDevice().key.public_key()
    serials = {ca.issue(device_id="dev_a", public_key=key, lifetime=DAY).serial for _ in range(5)}
    assert len(serials) == 5


def test_a_valid_client_certificate_gives_its_device_and_serial(ca: DeviceCA) -> None:
    issued = ca.issue(device_id="dev_abc", public_key=SoftDevice().key.public_key(), lifetime=DAY)
    assert ca.check_client_certificate(der(issued.pem), now=NOW) == ("dev_abc", issued.serial)


def test_an_expired_or_not_yet_valid_certificate_is_refused(ca: DeviceCA) -> None:
    issued = ca.issue(device_id="dev_abc", public_key=SoftDevice().key.public_key(), lifetime=DAY)
    with pytest.raises(CertificateRefused, match="not at"):
        ca.check_client_certificate(der(issued.pem), now=NOW + DAY + timedelta(seconds=1))
    with pytest.raises(CertificateRefused, match="not at"):
        ca.check_client_certificate(der(issued.pem), now=NOW - timedelta(hours=1))


def test_a_certificate_from_another_ca_is_refused(ca: DeviceCA) -> None:
    other = DeviceCA.create(clock=FixedClock(NOW))  # same names, different key
    issued = other.issue(
        device_id="dev_abc", public_key=SoftDevice().key.public_key(), lifetime=DAY
    )
    with pytest.raises(CertificateRefused, match="not issued by the device CA"):
        ca.check_client_certificate(der(issued.pem), now=NOW)


def test_a_server_certificate_is_not_accepted_as_a_client_certificate(ca: DeviceCA) -> None:
    cert_pem, key_pem = ca.server_certificate(["auth.localhost", "*.localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["auth.localhost", "*.localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(ca.certificate)
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == cert.public_key()
    with pytest.raises(CertificateRefused, match="client authentication"):
        ca.check_client_certificate(cert.public_bytes(serialization.Encoding.DER), now=NOW)


def test_garbage_is_refused(ca: DeviceCA) -> None:
    with pytest.raises(CertificateRefused, match="not a DER"):
        ca.check_client_certificate(b"\x30\x03junk", now=NOW)


def test_only_ec_p256_public_keys_are_accepted() -> None:
    good = SoftDevice().public_pem
    assert isinstance(load_device_public_key(good), ec.EllipticCurvePublicKey)
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(InvalidPublicKey, match="expected an EC P-256 key, got RSA"):
        load_device_public_key(rsa_pem)
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(InvalidPublicKey, match="got curve secp384r1"):
        load_device_public_key(p384)
    with pytest.raises(InvalidPublicKey, match="PEM 'PUBLIC KEY'"):
        load_device_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_a_certificate_without_a_device_uri_names_no_device() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev_abc")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + DAY)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("https://example.com")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateRefused, match="names no device"):
        device_id_from_certificate(cert)
