"""The device a client certificate names, carried from the TLS connection to the gateway.

Kept apart from ``mtls.py`` (the uvicorn protocol subclasses) so the access check can
name a ``ClientDevice`` without loading the server.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from cryptography import x509

from nevertrust.types import Scope

__all__ = [
    "DEVICE_URN_PREFIX",
    "SCOPE_KEY",
    "ClientDevice",
    "client_device",
    "device_from_der",
    "peer_device",
]

DEVICE_URN_PREFIX = "urn:nevertrust:device:"
SCOPE_KEY = "nevertrust.device"


@dataclass(frozen=True, slots=True)
class ClientDevice:
    """What a verified client certificate says: the device and which certificate."""

    device_id: str
    serial: str  # lower-case hex, as stored for the device's current certificate


def device_from_der(der: bytes) -> ClientDevice | None:
    """The device a (handshake-verified) certificate names, or None if it names none."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(DEVICE_URN_PREFIX) and len(uri) > len(DEVICE_URN_PREFIX):
            return ClientDevice(uri[len(DEVICE_URN_PREFIX) :], format(cert.serial_number, "x"))
    return None


def peer_device(transport: asyncio.BaseTransport) -> ClientDevice | None:
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return device_from_der(der) if der else None


def client_device(scope: Scope) -> ClientDevice | None:
    """The device of the connection a request came on (None: no or no device certificate)."""
    extensions = scope.get("extensions")
    if not extensions:
        return None
    tls = extensions.get("tls")
    return tls.get(SCOPE_KEY) if tls else None
