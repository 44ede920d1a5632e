"""The control socket: a CLI process makes the running server sync at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.control import ControlServer, request_sync
from nevertrust.store.feed import ChangeFeedWatcher


@contextlib.asynccontextmanager
async def serving(server: ControlServer) -> AsyncIterator[ControlServer]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_request_sync_makes_the_server_sync_before_it_returns(
    any_services: Services, peer: Services
) -> None:
    events: list[ChangeEvent] = []
    watcher = ChangeFeedWatcher(db=any_services.db, uow=any_services.uow, publish=events.append)
    watcher.start_position()
    path = any_services.settings.control_socket

    async with serving(ControlServer(path=path, sync=watcher.sync)):
        peer.directory.add_group("ops", actor="cli")
        # The CLI blocks on the socket; the server answers from this event loop.
        answered = await asyncio.to_thread(peer.notify_server)

        # No watcher task runs here: only the control request can have delivered the event.
        assert answered is True
        assert events == [ChangeEvent(Topic.GROUP, "ops")]


async def test_control_socket_is_private_to_its_owner(services: Services) -> None:
    path = services.settings.control_socket
    calls: list[int] = []

    async def sync() -> int:
        calls.append(1)
        return 0

    async with serving(ControlServer(path=path, sync=sync)):
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert await asyncio.to_thread(request_sync, path) is True
    assert calls == [1]


async def test_unknown_command_is_refused_without_syncing(services: Services) -> None:
    path = services.settings.control_socket
    calls: list[int] = []

    async def sync() -> int:
        calls.append(1)
        return 0

    def send(line: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(str(path))
            sock.sendall(line)
            return sock.recv(64)

    async with serving(ControlServer(path=path, sync=sync)):
        reply = await asyncio.to_thread(send, b"drop-tables\n")

    assert reply == b"error unknown-command\n"
    assert calls == []


def test_request_sync_is_false_without_a_socket(tmp_path: Path) -> None:
    assert request_sync(tmp_path / "run" / "control.sock") is False


def test_request_sync_is_false_when_nothing_listens(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))  # a socket file left behind by a server that is gone

        assert request_sync(path, timeout=1) is False


async def test_request_sync_is_false_after_the_server_stops(services: Services) -> None:
    path = services.settings.control_socket

    async def sync() -> int:
        return 0

    async with serving(ControlServer(path=path, sync=sync)):
        pass

    assert not path.exists()
    assert await asyncio.to_thread(request_sync, path) is False
