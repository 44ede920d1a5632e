"""The client half of TCP tunnels (``nevertrust connect``): sign-in through the browser,
a local listener, and one authenticated websocket per local connection.

No CLI code lives here (``cli/connect.py`` is the thin command), so the pieces can be
tested and reused on their own.
"""

from __future__ import annotations

from nevertrust.tunnelclient.endpoint import AppEndpoint, loopback_bind
from nevertrust.tunnelclient.errors import SignInFailed
from nevertrust.tunnelclient.forward import Forwarder
from nevertrust.tunnelclient.signin import AppSession, Credentials, GatewayClient
from nevertrust.tunnelclient.tls import ClientTls, DeviceCertificate, client_tls

__all__ = [
    "AppEndpoint",
    "AppSession",
    "ClientTls",
    "Credentials",
    "DeviceCertificate",
    "Forwarder",
    "GatewayClient",
    "SignInFailed",
    "client_tls",
    "loopback_bind",
]
