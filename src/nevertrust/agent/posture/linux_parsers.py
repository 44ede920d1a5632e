"""Pure parsers of what the Linux collector reads (``linux.py`` does the reading).

Each takes a command's output or a file's text and returns a value or ``None`` when the
text does not say (a format we do not recognise, a permission error): the posture field
is then ``null``, never a guess. Tested on recorded outputs in tests/vectors/agent/linux/.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

__all__ = [
    "firewalld_running",
    "gsettings_bool",
    "gsettings_uint",
    "iptables_filters",
    "mountinfo_root",
    "newest_apt_upgrade",
    "newest_dnf_upgrade",
    "newest_dpkg_upgrade",
    "newest_rpm_install",
    "nft_filters",
    "os_release",
    "proc_hidden",
    "status_uid",
    "os_name_version",
    "root_encrypted_lsblk",
    "ufw_active",
]


# ---- OS: /etc/os-release (os-release(5): shell-style assignments, values maybe quoted)


def os_release(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, comments=False, posix=True)
        except ValueError:
            continue
        if key.strip().isidentifier():
            fields[key.strip()] = " ".join(words)
    return fields


def os_name_version(fields: Mapping[str, str]) -> tuple[str | None, str | None]:
    """NAME and VERSION_ID (BUILD_ID on rolling distributions, which have no version)."""
    name = fields.get("NAME") or fields.get("ID")
    version = fields.get("VERSION_ID") or fields.get("BUILD_ID")
    return name or None, version or None


# ---- Patch age: when packages were last upgraded (times are the machine's local time)

_APT_START = re.compile(r"^Start-Date:\s*(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})\s*$")
_DPKG_UPGRADE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) upgrade \S")
_DNF_UPGRADE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:?\d{2}|Z)?)\s+\S+\s+Upgrade(?:d)?:\s"
)


def _local(day: str, clock: str) -> datetime | None:
    try:
        return datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None


def _newest(moments: Iterable[datetime | None]) -> datetime | None:
    found = [m for m in moments if m is not None]
    return max(found) if found else None


def newest_apt_upgrade(text: str) -> datetime | None:
    """The newest Start-Date of an apt transaction that upgraded packages.

    Transactions that only installed new packages (``Install:``) do not count: a new
    package says nothing about whether the ones already there were patched.
    """
    moments: list[datetime | None] = []
    start: datetime | None = None
    for line in text.splitlines():
        match = _APT_START.match(line)
        if match:
            start = _local(match.group(1), match.group(2))
        elif line.startswith("Upgrade:") and start is not None:
            moments.append(start)
        elif not line.strip():
            start = None
    return _newest(moments)


def newest_dpkg_upgrade(text: str) -> datetime | None:
    """The newest ``upgrade`` action in dpkg.log (``install`` lines do not count, as above)."""
    return _newest(
        _local(m.group(1), m.group(2))
        for m in (_DPKG_UPGRADE.match(line) for line in text.splitlines())
        if m
    )


def newest_dnf_upgrade(text: str, tz: tzinfo | None = None) -> datetime | None:
    """The newest ``Upgrade:``/``Upgraded:`` line of dnf.rpm.log, as naive time in ``tz``."""
    moments: list[datetime | None] = []
    for line in text.splitlines():
        match = _DNF_UPGRADE.match(line)
        if not match:
            continue
        stamp = match.group(1)
        try:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            continue
        moments.append(moment.astimezone(tz).replace(tzinfo=None) if moment.tzinfo else moment)
    return _newest(moments)


def newest_rpm_install(text: str, tz: tzinfo | None = None) -> datetime | None:
    """The newest ``rpm -qa --qf '%{INSTALLTIME}\\n'`` (Unix seconds; no locale to misread).

    On RPM systems an update is an install of the newer package, so this is the last time
    anything was updated or installed; used only when dnf.rpm.log says nothing.
    """
    stamps = [int(line) for line in text.split() if line.isdigit()]
    if not stamps:
        return None
    return datetime.fromtimestamp(max(stamps), tz).replace(tzinfo=None)


# ---- Disk encryption: is the root filesystem on a dm-crypt (LUKS or plain) device?


def _paths_to_root(
    nodes: Iterable[Mapping[str, Any]], trail: tuple[str, ...]
) -> Iterable[tuple[str, ...]]:
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        types = (*trail, str(node.get("type", "")))
        mounts = node.get("mountpoints")
        if mounts is None:
            mounts = [node.get("mountpoint")]
        if isinstance(mounts, list) and "/" in mounts:
            yield types
        children = node.get("children")
        if isinstance(children, list):
            yield from _paths_to_root(children, types)


def root_encrypted_lsblk(text: str) -> bool | None:
    """From ``lsblk -J -o NAME,TYPE,MOUNTPOINTS`` (or the older MOUNTPOINT column).

    lsblk nests each device under what it is built on (disk > part > crypt > lvm), so the
    root filesystem is encrypted when a ``crypt`` device lies on its way up. Every way up
    must have one (an LVM volume spanning a plain disk is not encrypted). No ``/`` among
    the block devices (overlay, ZFS, network root) is undetermined: None.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return None
    devices = data.get("blockdevices") if isinstance(data, dict) else None
    if not isinstance(devices, list):
        return None
    paths = list(_paths_to_root(devices, ()))
    if not paths:
        return None
    return all("crypt" in path for path in paths)


def mountinfo_root(text: str) -> tuple[str, str] | None:
    """(``major:minor``, mount source) of ``/`` in /proc/self/mountinfo; the last mount wins."""
    found: tuple[str, str] | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        if fields[4] == "/":
            found = (fields[2], tail[1])
    return found


def proc_hidden(mountinfo: str) -> bool:
    """Whether /proc is mounted with ``hidepid`` (other users' processes are invisible)."""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and fields[4] == "/proc" and len(tail) >= 3 and tail[0] == "proc":
            for option in tail[2].split(","):
                key, _, value = option.partition("=")
                if key == "hidepid" and value not in ("0", "off"):
                    return True
    return False


def status_uid(text: str) -> int | None:
    """The real uid in /proc/PID/status."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            words = line.split()
            return int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    return None


# ---- Firewall (read only: the rules are listed, never changed)

_NFT_CHAIN = re.compile(r"^\s*chain\s+(\S+)\s*\{")
_NFT_INPUT_HOOK = re.compile(r"\bhook\s+input\b")
_NFT_DROP_POLICY = re.compile(r"\bpolicy\s+(drop|reject)\b")
# What may precede a verdict without making the rule conditional: counting and logging.
_NFT_NEUTRAL_WORDS = {"counter", "packets", "bytes", "log", "prefix", "level"}


def _nft_catch_all(rule: str) -> bool:
    """``drop`` or ``reject ...`` that applies to every packet reaching it (no match)."""
    try:
        words = shlex.split(rule)  # log prefixes are quoted and may hold spaces
    except ValueError:
        words = rule.split()
    verdicts = [i for i, w in enumerate(words) if w in ("drop", "reject")]
    if not verdicts:
        return False
    before = words[: verdicts[0]]
    i = 0
    while i < len(before):
        word = before[i]
        if word in ("packets", "bytes", "prefix", "level") and i + 1 < len(before):
            i += 2
            continue
        if word not in _NFT_NEUTRAL_WORDS:
            return False
        i += 1
    return True


def nft_filters(text: str) -> bool:
    """Whether ``nft list ruleset`` filters what reaches this host.

    An input-hook chain must drop or reject by policy, or end in a rule that drops or
    rejects every packet reaching it (firewalld's style). Conditional drops (``ct state
    invalid drop``) and chains on other hooks (forward, as container runtimes add) do not
    protect this host's own ports. An empty ruleset is no firewall.
    """
    in_chain = False
    input_hook = False
    for line in text.splitlines():
        if _NFT_CHAIN.match(line):
            in_chain, input_hook = True, False
            continue
        if not in_chain:
            continue
        stripped = line.strip()
        if stripped == "}":
            in_chain = False
            continue
        if _NFT_INPUT_HOOK.search(stripped) and "type filter" in stripped:
            input_hook = True
            if _NFT_DROP_POLICY.search(stripped):
                return True
        elif input_hook and _nft_catch_all(stripped):
            return True
    return False


def iptables_filters(text: str) -> bool:
    """Whether ``iptables -S`` drops by policy on INPUT or ends INPUT with a catch-all
    ``-j DROP``/``-j REJECT`` (a rule with no match before the target)."""
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["-P", "INPUT"] and len(words) > 2 and words[2] in ("DROP", "REJECT"):
            return True
        if words[:4] in (["-A", "INPUT", "-j", "DROP"], ["-A", "INPUT", "-j", "REJECT"]):
            return True
    return False


def ufw_active(text: str) -> bool | None:
    for line in text.splitlines():
        if line.strip().lower().startswith("status:"):
            state = line.split(":", 1)[1].strip().lower()
            return {"active": True, "inactive": False}.get(state)
    return None


def firewalld_running(text: str) -> bool | None:
    return {"running": True, "not running": False}.get(text.strip().lower())


# ---- Screen lock (GNOME)


def gsettings_bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip())


def gsettings_uint(text: str) -> int | None:
    words = text.split()
    if len(words) == 2 and words[0] == "uint32" and words[1].isdigit():
        return int(words[1])
    if len(words) == 1 and words[0].isdigit():
        return int(words[0])
    return None
