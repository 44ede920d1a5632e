"""The local control socket: lets a CLI process make the running server catch up at once.

The CLI commits its change (with its change-log row) and then asks the server, over a
Unix socket in the home directory (mode 0600), to sync the change feed. When the CLI
command returns, the server has already dropped what the change invalidates, so the very
next request sees it. Without a running server the call is a no-op; the feed watcher
would pick the change up anyway within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["ControlServer", "request_sync"]

_SYNC = b"sync\n"


class ControlServer:
    def __init__(self, *, path: Path, sync: Callable[[], Awaitable[int]]) -> None:
        self._path = path
        self._sync = sync
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self._path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._server = await asyncio.start_unix_server(self._handle, path=str(self._path))
        os.chmod(self._path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            if line == _SYNC:
                count = await self._sync()
                writer.write(f"ok {count}\n".encode())
            else:
                writer.write(b"error unknown-command\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def request_sync(path: Path, *, timeout: float = 3.0) -> bool:
    """Ask a running server to apply pending changes now; False when none answers."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(_SYNC)
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"ok")
