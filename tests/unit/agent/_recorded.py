"""A ``Runner`` that answers from recorded outputs: the collectors' logic on known machines.

This stands in for the operating system (the port the collectors read through), not for
our own code: the parsers and the collectors' decisions run for real.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nevertrust.agent.posture import Output

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "agent"


def vector(platform: str, name: str) -> str:
    """A recorded output, line endings kept (Windows tools print CRLF)."""
    return (VECTORS / platform / name).read_bytes().decode("utf-8")


def vector_bytes(platform: str, name: str) -> bytes:
    return (VECTORS / platform / name).read_bytes()


@dataclass
class RecordedRunner:
    commands: Mapping[tuple[str, ...], Output] = field(default_factory=dict)
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    dirs: Mapping[str, list[str]] = field(default_factory=dict)
    mtimes: Mapping[str, float] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str]) -> Output | None:
        self.ran.append(tuple(argv))
        return self.commands.get(tuple(argv))

    def read_bytes(self, path: str) -> bytes | None:
        data = self.files.get(path)
        if data is None:
            return None
        return data.encode("utf-8") if isinstance(data, str) else data

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str] | None:
        return self.dirs.get(path)

    def mtime(self, path: str) -> float | None:
        return self.mtimes.get(path)

    def realpath(self, path: str) -> str:
        return self.links.get(path, path)


def ok(stdout: str = "", stderr: str = "") -> Output:
    return Output(returncode=0, stdout=stdout, stderr=stderr)


def failed(stderr: str = "", returncode: int = 1, stdout: str = "") -> Output:
    return Output(returncode=returncode, stdout=stdout, stderr=stderr)
