"""Long-lived connections (websockets, TCP tunnels) that must end when access ends.

A request is decided once; a connection lives on. Peers' users keep asking why a
websocket outlives logout (pomerium#1279, #1327; oauth2-proxy#2996). Here every open
connection is re-decided whenever a change event arrives (revocation, disabled user,
group or policy change) and every ``interval`` seconds (expiry, idle timeout), and is cut
as soon as the answer is no longer "allow".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nevertrust.bus.events import ChangeEvent
from nevertrust.gateway.access import AccessChecker
from nevertrust.gateway.client_certs import ClientDevice
from nevertrust.gateway.request_ids import next_request_id

__all__ = ["LiveConnections"]

_log = logging.getLogger("nevertrust.gateway.live")


@dataclass(eq=False, slots=True)
class _Watched:
    token: str
    app_name: str
    path: str
    client_ip: str
    method: str
    client_device: ClientDevice | None
    cut: asyncio.Event = field(default_factory=asyncio.Event)


class LiveConnections:
    def __init__(self, access: AccessChecker, *, interval: float = 15.0) -> None:
        self._access = access
        self._interval = interval
        self._open: set[_Watched] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.asynccontextmanager
    async def watch(
        self,
        token: str,
        *,
        app_name: str,
        path: str,
        client_ip: str,
        method: str = "GET",
        client_device: ClientDevice | None = None,
    ) -> AsyncIterator[asyncio.Event]:
        """Watch one connection for its lifetime; the yielded event is set to cut it."""
        watched = _Watched(token, app_name, path, client_ip, method, client_device)
        self._open.add(watched)
        try:
            yield watched.cut
        finally:
            self._open.discard(watched)

    def on_event(self, event: ChangeEvent) -> None:
        """Bus subscriber; events arrive on the loop and on worker threads alike."""
        del event
        loop = self._loop
        if loop is None or not self._open:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            if self._open:
                await self.recheck()

    async def recheck(self) -> int:
        """Decide every open connection again; returns how many were cut."""
        cut = 0
        for watched in list(self._open):
            if watched.cut.is_set():
                continue
            request_id = next_request_id()
            try:
                check = await self._access.check(
                    watched.token,
                    app_name=watched.app_name,
                    method=watched.method,
                    path=watched.path,
                    client_ip=watched.client_ip,
                    request_id=request_id,
                    record=False,
                    client_device=watched.client_device,
                )
                allowed = check.allowed
                if not allowed:
                    # Record the decision that ends the connection (the allow answers of
                    # routine re-checks are not audited: the connection's start was).
                    await self._access.check(
                        watched.token,
                        app_name=watched.app_name,
                        method=watched.method,
                        path=watched.path,
                        client_ip=watched.client_ip,
                        request_id=request_id,
                        client_device=watched.client_device,
                    )
            except Exception:  # noqa: BLE001 - cannot re-decide: fail closed and cut
                _log.exception("live_connection_recheck_failed")
                allowed = False
            if not allowed:
                watched.cut.set()
                cut += 1
                _log.info(
                    "live_connection_cut",
                    extra={"app": watched.app_name, "request_id": request_id},
                )
        return cut
