"""The platform's device CA: EC P-256, self-signed, issues short-lived device certificates.

Device certificates (RFC 5280 profile): subject CN=<device id>, SAN URI
``urn:nevertrust:device:<device id>`` (the gateway reads the device from it), EKU
clientAuth only, a random 159-bit serial, valid ``devices.certificate_hours``. They are
short-lived instead of revocable: removing or re-keying a device changes the serial the
server accepts, and an old certificate dies on its own within a day. The CA's private key
never leaves the process unsealed: it is stored AES-GCM sealed under the master key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nevertrust.clock import Clock
from nevertrust.devices.errors import CertificateRefused, InvalidPublicKey
from nevertrust.devices.models import IssuedCertificate

__all__ = [
    "DEVICE_URN_PREFIX",
    "DeviceCA",
    "device_id_from_certificate",
    "load_device_public_key",
]

DEVICE_URN_PREFIX = "urn:nevertrust:device:"
CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=365)
# Certificates start a little in the past: a client whose clock runs slightly behind must
# not find a brand-new certificate "not yet valid".
_BACKDATE = timedelta(minutes=5)
_MAX_PEM = 4000


def load_device_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """A device's public key from PEM SubjectPublicKeyInfo; EC P-256 only, else refused."""
    if len(pem) > _MAX_PEM:
        raise InvalidPublicKey(f"public_key: expected at most {_MAX_PEM} characters of PEM")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey(
            "public_key: expected a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo) block"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        kind = type(key).__name__.removeprefix("_").replace("PublicKey", "")
        raise InvalidPublicKey(f"public_key: expected an EC P-256 key, got {kind or 'another'}")
    if not isinstance(key.curve, ec.SECP256R1):
        raise InvalidPublicKey(f"public_key: expected an EC P-256 key, got curve {key.curve.name}")
    return key


def device_id_from_certificate(cert: x509.Certificate) -> str:
    """The device a certificate was issued to, read from its SAN URI."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertificateRefused("the certificate names no device (no SAN)") from exc
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(DEVICE_URN_PREFIX) and len(uri) > len(DEVICE_URN_PREFIX):
            return uri[len(DEVICE_URN_PREFIX) :]
    raise CertificateRefused(f"the certificate names no device (no {DEVICE_URN_PREFIX} URI)")


def _serial(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


class DeviceCA:
    """The CA's certificate and private key, and what they sign."""

    def __init__(
        self,
        *,
        certificate: x509.Certificate,
        private_key: ec.EllipticCurvePrivateKey,
        clock: Clock,
    ) -> None:
        self.certificate = certificate
        self._key = private_key
        self._clock = clock

    @classmethod
    def create(cls, *, clock: Clock) -> DeviceCA:
        """A new CA: fresh P-256 key, self-signed, ten years, may sign end entities only."""
        now = clock.now()
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NeverTrust"),
                x509.NameAttribute(NameOID.COMMON_NAME, "NeverTrust device CA"),
            ]
        )
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate=cert, private_key=key, clock=clock)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def private_key_pem(self) -> bytes:
        """The private key as PKCS8 PEM, for sealing under the master key only."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def _leaf(
        self,
        *,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        now: datetime,
        lifetime: timedelta,
        san: x509.SubjectAlternativeName,
        usage: x509.ObjectIdentifier,
    ) -> x509.Certificate:
        ca_public = self._key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=usage == ExtendedKeyUsageOID.SERVER_AUTH,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(san, critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    def issue(
        self, *, device_id: str, public_key: ec.EllipticCurvePublicKey, lifetime: timedelta
    ) -> IssuedCertificate:
        """A client certificate for ``device_id``'s key, valid ``lifetime`` from now."""
        now = self._clock.now()
        cert = self._leaf(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]),
            public_key=public_key,
            now=now,
            lifetime=lifetime,
            san=x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(DEVICE_URN_PREFIX + device_id)]
            ),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return IssuedCertificate(pem=pem, serial=_serial(cert), not_after=cert.not_valid_after_utc)

    def server_certificate(self, hostnames: Sequence[str]) -> tuple[str, str]:
        """A TLS server certificate and its new private key (both PEM) for the mTLS listener.

        Devices trust it through the CA certificate they received at enrolment. Names that
        are IP addresses go in as IP SANs, the rest (wildcards included) as DNS names.
        """
        if not hostnames:
            raise ValueError("a server certificate needs at least one host name")
        entries: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                entries.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])]),
            public_key=key.public_key(),
            now=self._clock.now(),
            lifetime=SERVER_LIFETIME,
            san=x509.SubjectAlternativeName(entries),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()

    def check_client_certificate(self, der: bytes, *, now: datetime) -> tuple[str, str]:
        """Device id and serial of a client certificate this CA issued and that is valid at
        ``now``; refuses anything else (other issuer, bad signature, expired, not a client
        certificate, no device named)."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertificateRefused("not a DER X.509 certificate") from exc
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateRefused("the certificate was not issued by the device CA") from exc
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CertificateRefused(
                f"the certificate is valid from {cert.not_valid_before_utc.isoformat()} "
                f"to {cert.not_valid_after_utc.isoformat()}, not at {now.isoformat()}"
            )
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise CertificateRefused("the certificate is not for client authentication") from exc
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise CertificateRefused("the certificate is not for client authentication")
        return device_id_from_certificate(cert), _serial(cert)
