"""The portal's JWK Set, fetched over HTTP and kept for a while.

Refetched when the copy is ``refresh_seconds`` old, and early when an assertion names a
key the copy lacks (the gateway rotated its key). Early refetches happen at most once per
``min_refetch_seconds``, so a stream of assertions with made-up key ids cannot turn the
upstream into a flood against the portal. Concurrent fetches are coalesced into one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from nevertrust.errors import BackendUnavailable

__all__ = ["JwksCache", "JwksUnavailable"]

_log = logging.getLogger("nevertrust.upstream")
_TIMEOUT = 5.0
_MAX_BYTES = 1 << 20  # a JWK Set of a few keys is a few kB


class JwksUnavailable(BackendUnavailable):
    code = "jwks-unavailable"


def _parse(response: httpx.Response, url: str) -> Mapping[str, Any]:
    if response.status_code != 200:
        raise JwksUnavailable(f"JWKS fetch from {url} answered HTTP {response.status_code}")
    if len(response.content) > _MAX_BYTES:
        raise JwksUnavailable(f"JWKS from {url} is larger than {_MAX_BYTES} bytes")
    try:
        document = response.json()
    except ValueError as exc:
        raise JwksUnavailable(f"JWKS from {url} is not JSON") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise JwksUnavailable(f"JWKS from {url} is not a JWK Set (expected {{'keys': [...]}})")
    return {"keys": keys}


class JwksCache:
    """One JWKS URL's current copy.

    ``http_client``: a client of your own (proxies, a private CA, or an in-process
    transport in tests); it is not closed here. Without one, each fetch opens a client
    that ignores proxy environment variables: the JWKS is the upstream's trust anchor
    and should come straight from the portal.
    """

    def __init__(
        self,
        url: str,
        *,
        host_header: str | None = None,
        refresh_seconds: float = 300.0,
        min_refetch_seconds: float = 1.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._headers = {"host": host_header} if host_header else {}
        self._refresh = refresh_seconds
        self._min_refetch = min_refetch_seconds
        self._client = http_client
        self._jwks: Mapping[str, Any] | None = None
        self._fetched_at = 0.0
        self._attempted_at = -float("inf")
        self._failure: JwksUnavailable | None = None
        self._inflight: asyncio.Future[Mapping[str, Any]] | None = None
        self.fetches = 0  # completed fetch attempts, for operators and tests

    async def get(self) -> Mapping[str, Any]:
        """A copy at most ``refresh_seconds`` old, fetching one if needed.

        Raises:
            JwksUnavailable: no fresh copy and the portal cannot be reached (fail closed).
        """
        if self._jwks is not None and time.monotonic() - self._fetched_at < self._refresh:
            return self._jwks
        return await self._fetch()

    async def refresh_for_unknown_key(self) -> Mapping[str, Any]:
        """A newer copy, for an assertion naming a key this copy lacks.

        Within ``min_refetch_seconds`` of the last attempt the current copy is returned
        as it is (or the last failure raised), without asking the portal again.
        """
        if time.monotonic() - self._attempted_at < self._min_refetch and self._jwks is not None:
            return self._jwks
        return await self._fetch()

    async def _fetch(self) -> Mapping[str, Any]:
        future = self._inflight
        if future is None:
            failure = self._failure
            if failure is not None and time.monotonic() - self._attempted_at < self._min_refetch:
                raise failure
            self._attempted_at = time.monotonic()
            future = asyncio.ensure_future(self._download())
            future.add_done_callback(self._done)
            self._inflight = future
        # Shielded: a caller that goes away (client disconnect) does not cancel the fetch
        # the other callers are waiting for.
        return await asyncio.shield(future)

    def _done(self, future: asyncio.Future[Mapping[str, Any]]) -> None:
        if self._inflight is future:
            self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here, so a fetch nobody awaited logs nothing

    async def _download(self) -> Mapping[str, Any]:
        try:
            if self._client is not None:
                response = await self._client.get(self._url, headers=self._headers)
            else:
                async with httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False) as client:
                    response = await client.get(self._url, headers=self._headers)
            jwks = _parse(response, self._url)
        except JwksUnavailable as exc:
            self._failed(exc)
            raise
        except httpx.HTTPError as exc:
            failure = JwksUnavailable(
                f"JWKS fetch from {self._url} failed ({type(exc).__name__}: {exc})"
            )
            self._failed(failure)
            raise failure from exc
        finally:
            self.fetches += 1
        self._jwks = jwks
        self._fetched_at = time.monotonic()
        self._failure = None
        return jwks

    def _failed(self, failure: JwksUnavailable) -> None:
        self._failure = failure
        _log.warning("jwks_fetch_failed", extra={"url": self._url, "error": failure.message})
