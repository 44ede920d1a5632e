"""The agent's home directory ($NEVERTRUST_AGENT_HOME, default ~/.nevertrust-agent).

Layout (the device contract): ``device.key`` (PKCS#8 PEM, EC P-256, mode 0600),
``device.pem`` (the device certificate), ``ca.pem`` (the platform's device CA),
``state.json``. The directory is 0700.

Whoever can write the directory can swap the key or the state for their own, and whoever
can read the key *is* the device: so the agent refuses a home that others can write, a key
that others can read, and either one owned by another user (the SSH client's rule for
``~/.ssh``). Files are replaced atomically (write a temporary file, fsync, rename) so that a
crash or a full disk never leaves a half-written key or certificate behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

from nevertrust.agent.errors import AgentHomeUnsafe, NotEnrolled
from nevertrust.agent.models import AgentState

__all__ = ["AgentHome"]

_POSIX = os.name == "posix"


def _owner_is_us(info: os.stat_result) -> bool:
    return not _POSIX or info.st_uid == os.geteuid()


class AgentHome:
    """Files of one enrolled (or not yet enrolled) device."""

    KEY = "device.key"
    CERTIFICATE = "device.pem"
    CA = "ca.pem"
    STATE = "state.json"

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()

    def file(self, name: str) -> Path:
        return self.path / name

    # ---- safety

    def check(self, *, create: bool = False) -> None:
        """Refuse a home that others could change (create it 0700 when ``create``)."""
        if create and not self.path.exists():
            self.path.mkdir(mode=0o700, parents=True)
            if _POSIX:
                self.path.chmod(0o700)  # mkdir's mode is filtered by the umask
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise NotEnrolled(
                f"no agent home at {self.path}: enrol first with "
                "`nevertrust agent enroll --server URL --token TOKEN`"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise AgentHomeUnsafe(f"agent home {self.path} is not a directory")
        if _POSIX and info.st_mode & 0o022:
            raise AgentHomeUnsafe(
                f"agent home {self.path} is writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); fix with: chmod 700 {self.path}"
            )
        if not _owner_is_us(info):
            raise AgentHomeUnsafe(f"agent home {self.path} belongs to another user")

    def _check_key(self, path: Path) -> None:
        info = path.stat()
        if _POSIX and info.st_mode & 0o077:
            raise AgentHomeUnsafe(
                f"device key {path} is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); fix with: chmod 600 {path}"
            )
        if not _owner_is_us(info):
            raise AgentHomeUnsafe(f"device key {path} belongs to another user")

    # ---- reading

    def enrolled(self) -> bool:
        return self.file(self.STATE).exists()

    def load_state(self) -> AgentState:
        path = self.file(self.STATE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotEnrolled(
                f"this device is not enrolled (no {path}): "
                "run `nevertrust agent enroll --server URL --token TOKEN`"
            ) from None
        except (OSError, ValueError) as exc:
            raise AgentHomeUnsafe(f"cannot read {path}: {exc}") from exc
        try:
            return AgentState.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AgentHomeUnsafe(
                f"{path} is not an agent state file ({exc}); enrol again with --force"
            ) from exc

    def read_key(self) -> bytes:
        path = self.file(self.KEY)
        try:
            self._check_key(path)
            return path.read_bytes()
        except FileNotFoundError:
            raise NotEnrolled(f"no device key at {path}: enrol again with --force") from None

    def read_text(self, name: str) -> str | None:
        try:
            return self.file(name).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return None

    # ---- writing

    def write(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        """Replace ``name`` atomically with ``data`` (created with ``mode``)."""
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)  # created 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if _POSIX:
                os.chmod(tmp, mode)
            os.replace(tmp, self.file(name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if _POSIX:
            with contextlib.suppress(OSError):  # make the rename itself durable
                dir_fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def write_key(self, pem: bytes) -> None:
        self.write(self.KEY, pem, mode=0o600)

    def save_state(self, state: AgentState) -> None:
        text = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
        self.write(self.STATE, text.encode("utf-8"), mode=0o600)
