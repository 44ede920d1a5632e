"""TLS for the command line: trust the platform's device CA and present the device certificate.

Apps that require a compliant device can only be reached from a device the gateway can
identify, and the gateway identifies it by the client certificate on the mTLS listener
(``gateway.mtls_port``), issued at enrolment by the device agent (``agent/home.py`` names
the files). One ``ssl.SSLContext`` serves both clients the command line has, httpx (sign-in
and status) and websockets (tunnels), so they cannot disagree on which device they are.

The listener's server certificate comes from the same device CA, so ``ca.pem`` is trusted
too, in addition to the system store (a deployment may also sit behind a public
certificate). Trusting the CA is about the server only; it is done even when no device is
presented (``--no-device``), otherwise the listener could not be reached at all.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from nevertrust.agent.home import AgentHome
from nevertrust.errors import InvalidInput
from nevertrust.tunnelclient.endpoint import AppEndpoint

__all__ = ["ClientTls", "DeviceCertificate", "client_tls"]

_DEVICE_URN_PREFIX = "urn:nevertrust:device:"  # as gateway/client_certs.py reads it


@dataclass(frozen=True, slots=True)
class DeviceCertificate:
    """The device this machine presents, for the person to see which one it is."""

    device_id: str
    certificate: Path
    not_after: str  # ISO date


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What the clients use: ``context`` (None: library defaults) and the device, if any."""

    context: ssl.SSLContext | None
    device: DeviceCertificate | None


def _device(path: Path) -> DeviceCertificate:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound) as exc:
        raise InvalidInput(f"{path} is not a device certificate: {exc}") from exc
    device_id = next(
        (
            uri[len(_DEVICE_URN_PREFIX) :]
            for uri in names.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith(_DEVICE_URN_PREFIX)
        ),
        "",
    )
    if not device_id:
        raise InvalidInput(f"{path} names no device (no {_DEVICE_URN_PREFIX}... name)")
    return DeviceCertificate(device_id, path, cert.not_valid_after_utc.date().isoformat())


def client_tls(endpoint: AppEndpoint, agent_home: Path, *, device: bool | None) -> ClientTls:
    """The TLS setup for ``endpoint``.

    ``device``: True presents the device certificate (an error when there is none or the
    server is plain HTTP), False never does, None does when ``agent_home`` holds one and the
    server is HTTPS.
    """
    home = AgentHome(agent_home)
    cert_path, key_path, ca_path = (
        home.file(AgentHome.CERTIFICATE),
        home.file(AgentHome.KEY),
        home.file(AgentHome.CA),
    )
    if endpoint.scheme != "https":
        if device:
            raise InvalidInput(
                "--device needs the gateway's mTLS listener: give --server as an https:// "
                f"portal URL on gateway.mtls_port; got {endpoint.scheme}://"
            )
        return ClientTls(None, None)
    present = device if device is not None else cert_path.exists()
    if present and not cert_path.exists():
        raise InvalidInput(
            f"--device: no device certificate at {cert_path}; enrol this machine with "
            "`nevertrust agent enroll` (or set NEVERTRUST_AGENT_HOME)"
        )
    if not present and not ca_path.exists():
        return ClientTls(None, None)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_path.exists():
        context.load_verify_locations(cafile=str(ca_path))
    if not present:
        return ClientTls(context, None)
    # Whoever reads the key *is* the device: refuse a home or key others can change or read,
    # as the agent itself does.
    home.check()
    home.read_key()
    try:
        context.load_cert_chain(certfile=str(cert_path), keyfile=str(key_path))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot use the device certificate in {home.path}: {exc}") from exc
    return ClientTls(context, _device(cert_path))
