"""Signing the command line in through the person's browser (see gateway/cli_login.py).

A one-shot listener on ``127.0.0.1:<ephemeral>`` receives the browser's redirect with a
one-time code; the code and the nonce only this process knows are exchanged for an app
session token, held in memory only (never written to disk: a leaked file would be a
session). ``Credentials`` signs in again, once for all waiting connections, when the
session has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from nevertrust import __version__
from nevertrust.tunnelclient.endpoint import AppEndpoint
from nevertrust.tunnelclient.errors import GatewayUnreachable, SignInFailed

__all__ = [
    "USER_AGENT",
    "AppSession",
    "CallbackListener",
    "Credentials",
    "GatewayClient",
    "SessionStatus",
    "sign_in",
]

USER_AGENT = f"nevertrust-connect/{__version__}"
APP_SESSION_COOKIE = "nt_app_session"
_TOKEN_PATH = "/.nevertrust/cli-token"  # noqa: S105 - a path, not a secret
_DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>NeverTrust</title>"
    b"<p style='font-family:system-ui;margin:3rem'>%s</p>"
)


@dataclass(frozen=True, slots=True)
class AppSession:
    token: str
    user: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class SessionStatus:
    alive: bool
    tunnel: bool  # the app is reached through tunnels (a tcp:// upstream)


class GatewayClient:
    """The two HTTP calls the command line makes to an app host."""

    def __init__(
        self,
        endpoint: AppEndpoint,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 15.0,
    ) -> None:
        """``tls``: the context from ``tls.client_tls`` (device CA, device certificate)."""
        self._endpoint = endpoint
        # Loopback hosts never go through a proxy from the environment.
        self._http = httpx.AsyncClient(
            verify=tls if tls is not None else True,
            base_url=endpoint.dial_origin,
            headers={"host": endpoint.host_header, "user-agent": USER_AGENT},
            timeout=timeout,
            trust_env=not endpoint.loopback,
            follow_redirects=False,
        )
        self._extensions: dict[str, Any] = (
            {"sni_hostname": endpoint.host} if endpoint.scheme == "https" else {}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def redeem(self, code: str, nonce: str) -> AppSession:
        response = await self._call(
            "POST", data={"code": code, "nonce": nonce}, what="completing the sign-in"
        )
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("token"), str):
            detail = body.get("detail") or f"HTTP {response.status_code}"
            raise SignInFailed(f"sign-in to {self._endpoint.app} failed: {detail}")
        return AppSession(
            token=body["token"],
            user=str(body.get("user", "")),
            expires_at=datetime.fromisoformat(str(body["expires_at"])),
        )

    async def status(self, session: AppSession) -> SessionStatus | None:
        """Whether ``session`` still works (None: the gateway could not say)."""
        try:
            response = await self._call(
                "GET",
                cookies={APP_SESSION_COOKIE: session.token},
                what="checking the session",
            )
        except GatewayUnreachable:
            return None
        if response.status_code == 401:
            return SessionStatus(alive=False, tunnel=True)
        if response.status_code != 200:
            return None
        return SessionStatus(alive=True, tunnel=bool(_json(response).get("tunnel", True)))

    async def _call(
        self,
        method: str,
        *,
        what: str,
        data: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {}
        if cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        try:
            return await self._http.request(
                method, _TOKEN_PATH, data=data, headers=headers, extensions=self._extensions
            )
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"cannot reach {self._endpoint.origin} while {what}: {exc or type(exc).__name__}"
            ) from exc


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class CallbackListener:
    """``127.0.0.1:<ephemeral>``, waiting for the browser's ``/callback?code=...``."""

    def __init__(self) -> None:
        self._result: asyncio.Future[str] | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> CallbackListener:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    async def code(self, timeout: float) -> str:
        """The code from the browser; raises SignInFailed on cancel, error or timeout."""
        assert self._result is not None  # noqa: S101 - only inside ``async with``
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout=timeout)
        except TimeoutError:
            raise SignInFailed(f"no sign-in within {timeout / 60:g} minutes") from None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        parts = urlsplit(target)
        status, message = 404, b"Not found."
        result = self._result
        if method == "GET" and parts.path == "/callback" and result is not None:
            query = parse_qs(parts.query)
            code = (query.get("code") or [""])[0]
            error = (query.get("error") or [""])[0]
            if result.done():
                status, message = 410, b"This sign-in is already complete."
            elif code:
                result.set_result(code)
                status, message = (
                    200,
                    (b"Signed in. You can close this tab and return to the terminal."),
                )
            else:
                result.set_exception(SignInFailed(f"sign-in {error or 'failed'} in the browser"))
                status, message = 200, b"Cancelled. The command line has stopped waiting."
        body = _DONE_PAGE % message
        writer.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/html; charset=utf-8\r\n"
            b"content-length: %d\r\ncache-control: no-store\r\nconnection: close\r\n\r\n%s"
            % (status, b"OK" if status == 200 else b"Not Found", len(body), body)
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()


async def sign_in(
    endpoint: AppEndpoint,
    client: GatewayClient,
    *,
    say: Callable[[str], None],
    open_browser: Callable[[str], Awaitable[None]] | None,
    timeout: float = 600.0,
) -> AppSession:
    """Have the person allow this command line in their browser; return the session."""
    nonce = secrets.token_urlsafe(32)
    async with CallbackListener() as listener:
        url = (
            f"{endpoint.origin}/.nevertrust/cli-login?port={listener.port}"
            f"&nonce={quote(nonce, safe='')}"
        )
        say(f"Sign in to connect to {endpoint.app}: open this link in your browser\n  {url}")
        if open_browser is not None:
            await open_browser(url)
        code = await listener.code(timeout)
    return await client.redeem(code, nonce)


class Credentials:
    """The current app session; signs in on first use and again once it has ended.

    Connections that find the session ended wait for one new sign-in together instead of
    each printing a link of its own.
    """

    def __init__(
        self,
        sign_in: Callable[[], Awaitable[AppSession]],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sign_in = sign_in
        self._now = now
        self._session: AppSession | None = None
        self._lock = asyncio.Lock()

    @property
    def session(self) -> AppSession | None:
        return self._session

    async def current(self) -> AppSession:
        session = self._session
        if session is not None and not session.expired(self._now()):
            return session
        return await self.renew(session)

    async def renew(self, stale: AppSession | None) -> AppSession:
        """Sign in again unless someone already replaced ``stale``."""
        async with self._lock:
            if self._session is not stale and self._session is not None:
                return self._session
            self._session = await self._sign_in()
            return self._session
