"""Where an app host is and how to reach it from this machine.

The command line is given the portal URL (``https://auth.example.com``) and an app name;
the app lives at ``<app>.example.com`` on the same scheme and port. Names under
``localhost`` are loopback by definition (RFC 6761 §6.3) but glibc does not resolve
``*.localhost``, so such hosts are dialled at 127.0.0.1 with the right Host header (and,
over TLS, the right server name).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from nevertrust.domain import validate_name
from nevertrust.errors import InvalidInput

__all__ = ["AppEndpoint", "loopback_bind"]

_PORTAL_LABEL = "auth."


@dataclass(frozen=True, slots=True)
class AppEndpoint:
    app: str
    scheme: str  # http or https
    host: str  # e.g. db.example.com
    port: int
    connect_host: str  # what to dial: the host, or 127.0.0.1 for *.localhost

    @classmethod
    def from_portal(cls, portal_url: str, app: str) -> AppEndpoint:
        """The endpoint of ``app`` next to the portal at ``portal_url``."""
        validate_name("app", app)
        try:
            parts = urlsplit(portal_url.strip())
            port = parts.port
        except ValueError as exc:
            raise InvalidInput(f"--server {portal_url!r} is not a URL: {exc}") from exc
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host.startswith(_PORTAL_LABEL):
            raise InvalidInput(
                f"--server must be the portal URL, such as https://auth.example.com; "
                f"got {portal_url!r}"
            )
        app_host = app + "." + host[len(_PORTAL_LABEL) :]
        loopback = app_host == "localhost" or app_host.endswith(".localhost")
        return cls(
            app=app,
            scheme=parts.scheme,
            host=app_host,
            port=port or (443 if parts.scheme == "https" else 80),
            connect_host="127.0.0.1" if loopback else app_host,
        )

    @property
    def loopback(self) -> bool:
        return self.connect_host == "127.0.0.1" and self.host != "127.0.0.1"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        """The app's URL as the person's browser knows it."""
        return f"{self.scheme}://{self.host_header}"

    @property
    def dial_origin(self) -> str:
        """The URL this process connects to (127.0.0.1 for *.localhost); send host_header."""
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.connect_host}{port}"

    @property
    def tunnel_url(self) -> str:
        return (
            f"{'wss' if self.scheme == 'https' else 'ws'}://{self.host_header}/.nevertrust/tunnel"
        )


def loopback_bind(bind: str) -> str:
    """``bind`` if it is a loopback address, else an error saying why it must be one.

    Whoever can open the local port uses the app with *your* identity, and the gateway
    cannot tell them apart; so the listener stays on this machine's loopback interface.
    """
    text = bind.strip()
    if text == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise InvalidInput(
            f"--bind {bind!r} is not an IP address; use a loopback address such as 127.0.0.1"
        ) from None
    if not address.is_loopback:
        raise InvalidInput(
            f"--bind {bind!r} is not a loopback address: anyone who can reach the port would "
            "use the app as you. Use 127.0.0.1 (or ::1)."
        )
    return str(address)
