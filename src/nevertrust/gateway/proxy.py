"""Streaming reverse proxy to app upstreams.

Request and response bodies are streamed in both directions; nothing is buffered whole.
Headers the client could use to impersonate someone (our assertion header, forwarded-for
chains) are removed and set by us, and our own cookies never reach the upstream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

import httpx

from nevertrust.types import Receive, Send

__all__ = ["UpstreamError", "UpstreamProxy"]

_log = logging.getLogger("nevertrust.gateway.proxy")

# RFC 9110 §7.6.1 hop-by-hop fields, plus ones we always set ourselves.
_HOP_BY_HOP = frozenset(
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


class UpstreamError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _filter_cookie(raw: bytes, drop: frozenset[str]) -> bytes | None:
    kept = [
        part.strip()
        for part in raw.split(b";")
        if part.strip() and part.strip().split(b"=", 1)[0].decode("latin-1") not in drop
    ]
    return b"; ".join(kept) if kept else None


class UpstreamProxy:
    def __init__(self, *, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
        out: list[tuple[bytes, bytes]] = []
        has_body = False
        for key, value in headers:
            if key in _HOP_BY_HOP or key.startswith(strip_prefix):
                if key == b"content-length" or key == b"transfer-encoding":
                    has_body = True
                continue
            if key == b"cookie":
                filtered = _filter_cookie(value, drop_cookies)
                if filtered is not None:
                    out.append((key, filtered))
                continue
            out.append((key, value))
        out.append((b"x-forwarded-for", client_ip.encode()))
        out.append((b"x-forwarded-host", original_host))
        out.append((b"x-forwarded-proto", scheme.encode()))
        out.extend(extra_headers)

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

        url = (
            upstream
            + raw_path.decode("latin-1")
            + (("?" + query.decode("latin-1")) if query else "")
        )
        request = self._client.build_request(
            method, url, headers=out, content=body() if has_body else None
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, "the application did not answer in time") from exc
        except httpx.HTTPError as exc:
            _log.warning("upstream_unreachable", extra={"upstream": upstream, "error": str(exc)})
            raise UpstreamError(502, "the application is unreachable") from exc
        try:
            response_headers = [
                (k.lower(), v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers,
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                _log.warning("upstream_stream_broken", extra={"upstream": upstream})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()
        return response.status_code
