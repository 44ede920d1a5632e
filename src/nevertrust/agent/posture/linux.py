"""Linux posture, for real: the files and read-only commands behind each field.

The parsing is in ``linux_parsers.py``; this module only decides what to read, in which
order, and what the combination means. Fields and sources (docs/agent.md has the table):

- OS: /etc/os-release NAME and VERSION_ID; kernel: ``uname -r`` (the uname system call).
- Patch age: the newest package *upgrade* among apt's history.log, dpkg.log (both with
  their rotated copies) and /var/lib/apt/periodic/upgrade-stamp (unattended-upgrades); on
  RPM systems dnf.rpm.log, then ``rpm -qa --qf %{INSTALLTIME}``.
- Disk encryption: the root filesystem's device stack in ``lsblk -J``; without lsblk,
  /proc/self/mountinfo and /sys/.../dm/uuid (``CRYPT-`` is dm-crypt) down the slaves.
- Firewall: ``nft list ruleset`` / ``iptables -S`` (the kernel's rules), ``ufw status``,
  ``firewall-cmd --state``. Reading the rules needs root; as a user they are often null.
- EDR: /proc/*/comm against the list in ``edr.py``.
- Screen lock: GNOME's lock-enabled and idle-delay through ``gsettings``, only for a
  GNOME session of the user running the agent; on a headless machine: null.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from nevertrust.agent.models import Collected, Posture
from nevertrust.agent.posture import linux_parsers as p
from nevertrust.agent.posture._age import days_since
from nevertrust.agent.posture._run import Runner
from nevertrust.agent.posture.edr import LINUX_AGENTS, find_agent

__all__ = ["collect_linux"]

_MAX_LOG = 32 * 1024 * 1024
# As /proc/PID/comm spells them (cut at 15 characters: gnome-session-binary).
_GNOME_SESSION = ("gnome-shell", "gnome-session-b")


def _log_text(runner: Runner, path: str) -> str | None:
    data = runner.read_bytes(path)
    if data is None:
        return None
    if path.endswith(".gz"):
        try:
            data = zlib.decompressobj(wbits=31).decompress(data, _MAX_LOG)
        except zlib.error:
            return None
    return data.decode("utf-8", errors="replace")


def _newest_in_logs(
    runner: Runner, directory: str, base: str, parse: Callable[[str], datetime | None]
) -> datetime | None:
    """The newest hit in ``base`` and its rotations, newest file first (stop at the first)."""
    names = runner.listdir(directory) or []
    rotated = re.compile(re.escape(base) + r"(?:\.(\d+))?(?:\.gz)?$")
    ordered = sorted(
        (int(m.group(1) or 0), name) for name in names if (m := rotated.fullmatch(name))
    )
    for _, name in ordered:
        text = _log_text(runner, f"{directory}/{name}")
        found = parse(text) if text is not None else None
        if found is not None:
            return found
    return None


def _last_upgrade(runner: Runner, tz: tzinfo | None) -> tuple[datetime | None, str]:
    debian = [
        (_newest_in_logs(runner, "/var/log/apt", "history.log", p.newest_apt_upgrade), "apt"),
        (_newest_in_logs(runner, "/var/log", "dpkg.log", p.newest_dpkg_upgrade), "dpkg.log"),
    ]
    stamp = runner.mtime("/var/lib/apt/periodic/upgrade-stamp")
    if stamp is not None:
        debian.append((datetime.fromtimestamp(stamp, tz).replace(tzinfo=None), "upgrade-stamp"))
    found = [(when, source) for when, source in debian if when is not None]
    if found:
        return max(found)
    dnf = _newest_in_logs(
        runner, "/var/log", "dnf.rpm.log", lambda text: p.newest_dnf_upgrade(text, tz)
    )
    if dnf is not None:
        return dnf, "dnf.rpm.log"
    rpm = runner.run(["rpm", "-qa", "--qf", "%{INSTALLTIME}\\n"])
    if rpm is not None and rpm.ok:
        newest = p.newest_rpm_install(rpm.stdout, tz)
        if newest is not None:
            return newest, "rpm install times"
    return None, "no package upgrade recorded (apt, dpkg, dnf or rpm)"


def _sysfs_encrypted(runner: Runner, block: str, depth: int = 0) -> bool | None:
    """dm-crypt somewhere under the block device directory ``block`` (all slaves)?"""
    if depth > 8 or runner.read(f"{block}/dev") is None:
        return None
    uuid = runner.read(f"{block}/dm/uuid")
    if uuid is not None and uuid.strip().startswith("CRYPT-"):
        return True
    slaves = runner.listdir(f"{block}/slaves") or []
    if not slaves:
        return False
    below = [_sysfs_encrypted(runner, f"/sys/class/block/{s}", depth + 1) for s in slaves]
    if None in below:
        return None
    return all(below)


def _disk_encrypted(runner: Runner) -> tuple[bool | None, str]:
    for column in ("MOUNTPOINTS", "MOUNTPOINT"):  # MOUNTPOINTS is util-linux >= 2.37
        out = runner.run(["lsblk", "-J", "-o", f"NAME,TYPE,{column}"])
        if out is not None and out.ok:
            found = p.root_encrypted_lsblk(out.stdout)
            if found is not None:
                return found, "lsblk: root filesystem " + (
                    "on" if found else "not on"
                ) + " dm-crypt"
            break
    mountinfo = runner.read("/proc/self/mountinfo")
    root = p.mountinfo_root(mountinfo) if mountinfo else None
    if root is None:
        return None, "root filesystem not found in lsblk or mountinfo"
    majmin, source = root
    block = f"/sys/dev/block/{majmin}"
    if runner.read(f"{block}/dev") is None and source.startswith("/dev/"):
        block = "/sys/class/block/" + runner.realpath(source).rsplit("/", 1)[-1]
    found = _sysfs_encrypted(runner, block)
    if found is None:
        return None, f"root filesystem ({source}) is not on a block device we can inspect"
    return found, f"sysfs: {source} " + ("on" if found else "not on") + " dm-crypt"


def _firewall(runner: Runner) -> tuple[bool | None, str]:
    kernel: list[tuple[bool, str]] = []
    nft = runner.run(["nft", "list", "ruleset"])
    if nft is not None and nft.ok:
        kernel.append((p.nft_filters(nft.stdout), "nft ruleset"))
    ipt = runner.run(["iptables", "-S"])
    if ipt is not None and ipt.ok:
        kernel.append((p.iptables_filters(ipt.stdout), "iptables rules"))
    frontends: list[tuple[bool | None, str]] = []
    ufw = runner.run(["ufw", "status"])
    if ufw is not None and ufw.ok:
        frontends.append((p.ufw_active(ufw.stdout), "ufw"))
    firewalld = runner.run(["firewall-cmd", "--state"])
    if firewalld is not None:
        frontends.append((p.firewalld_running(firewalld.stdout or firewalld.stderr), "firewalld"))
    for active, source in (*kernel, *frontends):
        if active:
            return True, f"{source}: filtering incoming traffic"
    if kernel:
        # Only the kernel's own rules can show that nothing filters; a front-end that is
        # off says nothing about rules loaded by something else.
        return False, "no input filtering in " + " and ".join(s for _, s in kernel)
    return None, "cannot read the firewall rules (nft/iptables absent or need root)"


def _processes(runner: Runner) -> dict[str, str]:
    """pid -> process name (comm) of every visible process."""
    names: dict[str, str] = {}
    for entry in runner.listdir("/proc") or []:
        if entry.isdigit():
            comm = runner.read(f"/proc/{entry}/comm")
            if comm is not None:
                names[entry] = comm.strip()
    return names


def _edr(
    runner: Runner, processes: dict[str, str], uid: int
) -> tuple[bool | None, str | None, str]:
    if not processes:
        return None, None, "cannot list processes (/proc unreadable)"
    found = find_agent(processes.values(), LINUX_AGENTS)
    if found is not None:
        return True, found, f"running: {found}"
    mountinfo = runner.read("/proc/self/mountinfo") or ""
    if uid != 0 and p.proc_hidden(mountinfo):
        return None, None, "/proc hides other users' processes (hidepid): run the agent as root"
    return False, None, "no known EDR process running"


def _screen_lock(runner: Runner, processes: dict[str, str], uid: int) -> tuple[bool | None, str]:
    sessions = [pid for pid, name in processes.items() if name in _GNOME_SESSION]
    if not sessions:
        return None, "no graphical GNOME session (headless): not applicable"
    if not any(p.status_uid(runner.read(f"/proc/{pid}/status") or "") == uid for pid in sessions):
        return None, "the GNOME session belongs to another user: run the agent as that user"
    lock = runner.run(["gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled"])
    idle = runner.run(["gsettings", "get", "org.gnome.desktop.session", "idle-delay"])
    if lock is None or not lock.ok or "memory" in lock.stderr.lower():
        return None, "gsettings cannot read this user's settings"
    enabled = p.gsettings_bool(lock.stdout)
    if enabled is False:
        return False, "GNOME lock-enabled is false"
    delay = p.gsettings_uint(idle.stdout) if idle is not None and idle.ok else None
    if enabled is None or delay is None:
        return None, "unrecognised gsettings output"
    if delay == 0:
        return False, "GNOME idle-delay is 0: the screen never blanks, so it never locks"
    return True, f"GNOME locks after {delay} s idle"


def collect_linux(
    runner: Runner, *, now: datetime, uid: int, kernel: str, tz: tzinfo | None = None
) -> Collected:
    """The posture of this Linux machine; ``tz`` is the zone of its logs (default: local)."""
    notes: dict[str, str] = {}
    name, version = p.os_name_version(p.os_release(runner.read("/etc/os-release") or ""))
    if name is None or version is None:
        notes["os_version"] = "/etc/os-release has no NAME or VERSION_ID"
    last, source = _last_upgrade(runner, tz)
    notes["patch_age_days"] = (
        source if last is None else f"last upgrade {last:%Y-%m-%d %H:%M} ({source})"
    )
    local_now = now.astimezone(tz).replace(tzinfo=None)
    disk, notes["disk_encrypted"] = _disk_encrypted(runner)
    firewall, notes["firewall_active"] = _firewall(runner)
    processes = _processes(runner)
    edr, edr_name, notes["edr_running"] = _edr(runner, processes, uid)
    lock, notes["screen_lock_enabled"] = _screen_lock(runner, processes, uid)
    posture = Posture(
        platform="linux",
        os_name=name or "unknown",
        os_version=version or "unknown",
        kernel_version=kernel or "unknown",
        patch_age_days=None if last is None else days_since(last, local_now),
        disk_encrypted=disk,
        firewall_active=firewall,
        edr_running=edr,
        edr_name=edr_name,
        screen_lock_enabled=lock,
        collected_at=now.astimezone(UTC),
    )
    return Collected(posture=posture, notes=notes)
