"""The device-certificate (mTLS) listener: which device a connection comes from.

CLI, tunnel and API clients prove their device with the certificate the platform CA
issued at enrolment (docs/devices.md). The TLS handshake does the cryptography: the
listener asks for a client certificate and the ssl module refuses one that does not chain
to the device CA or has expired. What is left is reading the device id and serial from
the certificate once per connection (not per request) and handing them to the gateway in
the ASGI scope, as the ``tls`` extension proposes, under ``nevertrust.device``. Whether
that serial is still the device's current one, whose device it is and what state it is
in are decided per request from the gateway snapshot, so a quarantine or a re-issued
certificate takes effect on the next request even on an open connection.

uvicorn exposes no client certificate to the application, hence the two small protocol
subclasses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from nevertrust.gateway.client_certs import SCOPE_KEY, peer_device

__all__ = ["MtlsHttpProtocol", "MtlsWebSocketProtocol"]


class MtlsHttpProtocol(HttpToolsProtocol):
    _nt_tls: dict[str, Any]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._nt_tls = {SCOPE_KEY: peer_device(transport)}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope["extensions"] = {"tls": self._nt_tls}


class MtlsWebSocketProtocol(WebSocketsSansIOProtocol):
    _nt_tls: dict[str, Any]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._nt_tls = {SCOPE_KEY: peer_device(transport)}

    async def run_asgi(self) -> None:
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope["extensions"]["tls"] = self._nt_tls
        await super().run_asgi()
