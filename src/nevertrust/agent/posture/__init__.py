"""Posture collection: one collector per platform, each split into the reading
(``linux.py``, ``macos.py``, ``windows.py``) and pure parsers of what was read
(``*_parsers.py``, tested on recorded outputs).

Nothing here changes the machine, and nothing personal is read: no file contents beyond
system configuration and package logs, no browsing data, no user names of other people.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from nevertrust.agent.models import Collected
from nevertrust.agent.posture._run import Output, Runner, SystemRunner
from nevertrust.errors import InvalidInput

__all__ = ["Output", "Runner", "SystemRunner", "collect_posture", "current_platform"]


def current_platform() -> str | None:
    """linux, macos or windows; None for anything else (the agent then refuses to run)."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    return None


def collect_posture(runner: Runner | None = None, *, now: datetime | None = None) -> Collected:
    """This machine's posture, read now. Raises ``InvalidInput`` on an unsupported platform."""
    runner = runner or SystemRunner()
    moment = now or datetime.now(UTC)
    platform = current_platform()
    if platform == "linux":
        from nevertrust.agent.posture.linux import collect_linux

        return collect_linux(runner, now=moment, uid=os.getuid(), kernel=os.uname().release)
    if platform == "macos":
        from nevertrust.agent.posture.macos import collect_macos

        return collect_macos(runner, now=moment)
    if platform == "windows":
        from nevertrust.agent.posture.windows import collect_windows

        return collect_windows(runner, now=moment)
    raise InvalidInput(f"the agent runs on Linux, macOS and Windows; this is {sys.platform!r}")
