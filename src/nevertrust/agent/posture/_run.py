"""Running a posture command or reading a file, the only I/O the collectors do.

Commands run without a shell, from a fixed argv, with a timeout, and are looked up on a
fixed search path rather than the caller's ``PATH`` (a ``PATH`` entry the user controls
would otherwise choose which ``nft`` answers). The locale is forced to C so the parsers
see the tools' English output; where a tool ignores that, the parsers refuse what they do
not recognise (``None``) rather than guess. Nothing here changes the system: every
command the collectors use only reads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Output", "Runner", "SystemRunner"]

_POSIX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_READ = 8 * 1024 * 1024  # logs can be large; never read more than this of one file


@dataclass(frozen=True, slots=True)
class Output:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    """How a collector runs commands and reads files (a recorded one in unit tests)."""

    def run(self, argv: Sequence[str]) -> Output | None:
        """The command's output, or None if it is not installed, timed out or failed to start."""
        ...

    def read(self, path: str) -> str | None:
        """The file's text (at most a few MiB), or None if it is absent or unreadable."""
        ...

    def read_bytes(self, path: str) -> bytes | None:
        """The file's bytes (compressed rotated logs), or None."""
        ...

    def listdir(self, path: str) -> list[str] | None:
        """The names in a directory, or None."""
        ...

    def mtime(self, path: str) -> float | None:
        """The file's modification time (Unix seconds), or None."""
        ...

    def realpath(self, path: str) -> str:
        """``path`` with symbolic links resolved."""
        ...


class SystemRunner:
    """The real thing: subprocesses and files of this machine."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def _which(self, name: str) -> str | None:
        if os.path.isabs(name):
            return name if os.access(name, os.X_OK) else None
        if sys.platform == "win32":
            return shutil.which(name)
        return shutil.which(name, path=_POSIX_PATH)

    def _environment(self) -> dict[str, str]:
        # The session's own variables (HOME, XDG_*, DBUS_*) are what gsettings and the
        # like need to read *this user's* settings; they are not NeverTrust configuration.
        env = dict(os.environ)  # noqa: TID251
        env.update({"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"})
        if sys.platform != "win32":
            env["PATH"] = _POSIX_PATH
        return env

    def run(self, argv: Sequence[str]) -> Output | None:
        exe = self._which(argv[0])
        if exe is None:
            return None
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv from the collectors, no shell
                [exe, *argv[1:]],
                capture_output=True,
                timeout=self._timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return Output(
            returncode=done.returncode,
            stdout=done.stdout.decode("utf-8", errors="replace"),
            stderr=done.stderr.decode("utf-8", errors="replace"),
        )

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with Path(path).open("rb") as handle:
                return handle.read(_MAX_READ)
        except OSError:
            return None

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return None

    def mtime(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return None

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)
