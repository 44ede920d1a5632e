"""Streaming reverse proxy to app upstreams.

Request and response bodies are streamed in both directions; nothing is buffered whole.
Headers the client could use to impersonate someone (our assertion header, forwarded-for
chains) are removed and set by us, and our own cookies never reach the upstream.

The client is aiohttp: on the gateway benchmark httpx/httpcore spent most of the CPU in
its connection pool (work quadratic in connections, encode/httpcore#1035), and aiohttp's
keep-alive pool and C HTTP parser forward the same requests at several times the rate.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from nevertrust.types import Receive, Send

__all__ = ["HOP_BY_HOP", "UpstreamError", "UpstreamProxy", "filter_cookie"]

_log = logging.getLogger("nevertrust.gateway.proxy")

# RFC 9110 §7.6.1 hop-by-hop fields, plus ones we always set ourselves.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"forwarded",
    }
)
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"trailer",
        b"upgrade",
        b"proxy-authenticate",
    }
)
# aiohttp would otherwise add its own defaults for these when the client sent none.
_SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding"})


class UpstreamError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def filter_cookie(raw: bytes, drop: frozenset[str]) -> bytes | None:
    kept = [
        part.strip()
        for part in raw.split(b";")
        if part.strip() and part.strip().split(b"=", 1)[0].decode("latin-1") not in drop
    ]
    return b"; ".join(kept) if kept else None


class UpstreamProxy:
    """A keep-alive connection pool per upstream origin, each created on first use.

    Separate pools with a bound each mean one slow or hung app can hold at most its own
    ``pool_size`` connections; the others keep their pools (and the gateway keeps serving
    them). Upstream TLS certificates are always verified, against the system store plus
    an optional extra CA bundle for internal CAs.
    """

    def __init__(
        self,
        *,
        timeout: float,
        connect_timeout: float = 5.0,
        pool_size: int = 100,
        ca_file: Path | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=min(timeout, connect_timeout), sock_read=timeout
        )
        self._pool_size = pool_size
        self._ca_file = ca_file
        self._ssl: ssl.SSLContext | None = None
        self._clients: dict[str, aiohttp.ClientSession] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            if self._ca_file is not None:
                context.load_verify_locations(cafile=str(self._ca_file))
            self._ssl = context
        return self._ssl

    def client_for(self, upstream: str) -> aiohttp.ClientSession:
        """The pool for ``upstream`` (an origin such as ``https://10.0.0.5:8443``)."""
        client = self._clients.get(upstream)
        if client is None or client.closed:
            client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size,
                    limit_per_host=0,
                    ttl_dns_cache=60,
                    ssl=self._tls() if upstream.startswith("https:") else False,
                ),
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=_SKIP_AUTO,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._clients[upstream] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    async def forward(
        self,
        *,
        upstream: str,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        extra_headers: Iterable[tuple[bytes, bytes]],
        drop_cookies: frozenset[str],
        strip_prefix: bytes,
        client_ip: str,
        original_host: bytes,
        scheme: str,
        receive: Receive,
        send: Send,
    ) -> int:
        """Proxy one request; returns the upstream status. Raises UpstreamError before
        anything was sent to the client."""
        out: CIMultiDict[str] = CIMultiDict()
        has_body = False
        for key, value in headers:
            if key in HOP_BY_HOP or key.startswith(strip_prefix):
                if key == b"content-length" or key == b"transfer-encoding":
                    has_body = True
                continue
            if key == b"cookie":
                filtered = filter_cookie(value, drop_cookies)
                if filtered is not None:
                    out.add("cookie", filtered.decode("latin-1"))
                continue
            out.add(key.decode("latin-1"), value.decode("latin-1"))
        out["x-forwarded-for"] = client_ip
        out["x-forwarded-host"] = original_host.decode("latin-1")
        out["x-forwarded-proto"] = scheme
        for key, value in extra_headers:
            out[key.decode("latin-1")] = value.decode("latin-1")

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        url = upstream + raw_path.decode("latin-1")
        if query:
            url += "?" + query.decode("latin-1")
        try:
            response = await self.client_for(upstream).request(
                method,
                URL(url, encoded=True),
                headers=out,
                data=body() if has_body else None,
                allow_redirects=False,
            )
        except TimeoutError as exc:
            raise UpstreamError(504, "the application did not answer in time") from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            _log.warning("upstream_certificate_rejected", extra={"upstream": upstream})
            raise UpstreamError(502, "the application's TLS certificate is not trusted") from exc
        except (aiohttp.ClientError, OSError) as exc:
            _log.warning("upstream_unreachable", extra={"upstream": upstream, "error": str(exc)})
            raise UpstreamError(502, "the application is unreachable") from exc
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (k.lower(), v)
                        for k, v in response.raw_headers
                        if k.lower() not in _RESPONSE_DROP
                    ],
                }
            )
            try:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, TimeoutError):
                _log.warning("upstream_stream_broken", extra={"upstream": upstream})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()
        return response.status
