"""The mTLS listener's server certificate, kept covering every app host.

Clients dial ``<app>.<domain>`` and check the server certificate's names. A wildcard does
not help under a single-label domain (OpenSSL will not match ``*.localhost``), so the
certificate names every app host explicitly, and is re-issued and loaded into the live
TLS context when an app is added: new handshakes get it, open connections keep theirs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from nevertrust.bus.events import ChangeEvent, Topic

__all__ = ["ServerCertificate"]

_log = logging.getLogger("nevertrust.gateway.mtls")


class _Issuer(Protocol):
    @property
    def certificate_pem(self) -> str: ...

    def server_certificate(self, hostnames: Sequence[str]) -> tuple[str, str]: ...


class ServerCertificate:
    def __init__(
        self, *, issuer: Callable[[], _Issuer], names: Callable[[], list[str]], folder: Path
    ) -> None:
        self._issuer = issuer
        self._names = names
        self.folder = folder
        self._issued_for: tuple[str, ...] = ()
        self._context: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "server.key"

    @property
    def ca_file(self) -> Path:
        return self.folder / "devices-ca.pem"

    def write(self) -> bool:
        """Issue (again) when the names changed; True when new files were written."""
        names = tuple(sorted(set(self._names())))
        if names == self._issued_for:
            return False
        issuer = self._issuer()
        cert_pem, key_pem = issuer.server_certificate(list(names))
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = {
            self.cert_file: cert_pem,
            self.key_file: key_pem,
            self.ca_file: issuer.certificate_pem,
        }
        for path, text in files.items():
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            path.write_text(text)
        self._issued_for = names
        return True

    def attach(self, context: ssl.SSLContext, loop: asyncio.AbstractEventLoop) -> None:
        """The listener's live TLS context, to load re-issued certificates into."""
        self._context = context
        self._loop = loop

    def on_event(self, event: ChangeEvent) -> None:
        if event.topic not in (Topic.APP, Topic.EVERYTHING) or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._refresh)

    def _refresh(self) -> None:
        try:
            if self.write() and self._context is not None:
                self._context.load_cert_chain(self.cert_file, self.key_file)
                _log.info("mtls_certificate_reissued", extra={"names": len(self._issued_for)})
        except Exception:  # noqa: BLE001 - keep serving with the certificate we have
            _log.exception("mtls_certificate_reissue_failed")
