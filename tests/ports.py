"""Free loopback ports for servers the tests start.

Asking the kernel for port 0 and closing the socket only says the port was free a moment
ago: the next ask may get the same number back, so a test that needs two ports (the main
port and a forward-auth listener, say) could be handed one port twice and fail at bind.
Ports handed out here are remembered and never handed out again in this process, and each
pytest-xdist worker takes only the ports that fall in its own residue class, so two
workers never receive the same number either. (The class is of ``port // 2``: Linux hands
out even ports to ``bind(port 0)``, keeping odd ones for ``connect``.)
"""

from __future__ import annotations

import os
import re
import socket

_handed_out: set[int] = set()


def _worker_slot() -> tuple[int, int]:
    """(this worker's index, number of workers); (0, 1) outside xdist."""
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if worker is None or count < 2:
        return 0, 1
    return int(worker.group(1)) % count, count


def free_port() -> int:
    """A loopback port nobody listens on now and no earlier call in this run returned."""
    index, count = _worker_slot()
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if (port // 2) % count == index and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port after 1000 tries")
