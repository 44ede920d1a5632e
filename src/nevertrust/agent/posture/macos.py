"""macOS posture: which commands answer each field (parsing is in ``macos_parsers.py``).

- OS: ``sw_vers``; kernel: ``uname -r``.
- Patch age: /Library/Receipts/InstallHistory.plist (dates in UTC, no locale), else
  ``softwareupdate --history`` (US date layout only).
- Disk encryption: ``fdesetup status`` (FileVault).
- Firewall: ``/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate``.
- EDR: ``ps -axco command`` against the list in ``edr.py``.
- Screen lock: ``sysadminctl -screenLock status``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nevertrust.agent.models import Collected, Posture
from nevertrust.agent.posture import macos_parsers as p
from nevertrust.agent.posture._age import days_since
from nevertrust.agent.posture._run import Output, Runner
from nevertrust.agent.posture.edr import MACOS_AGENTS, find_agent

__all__ = ["collect_macos"]

_SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
_INSTALL_HISTORY = "/Library/Receipts/InstallHistory.plist"


def _text(out: Output | None) -> str | None:
    """Both streams: some tools (sysadminctl) answer on standard error."""
    return None if out is None else out.stdout + "\n" + out.stderr


def _patch_age(runner: Runner, now: datetime) -> tuple[int | None, str]:
    plist = runner.read_bytes(_INSTALL_HISTORY)
    newest = p.install_history_newest(plist) if plist is not None else None
    if newest is not None:
        return days_since(newest, now), f"last update {newest:%Y-%m-%d} (InstallHistory.plist)"
    history = runner.run(["softwareupdate", "--history"])
    local = p.softwareupdate_history_newest(history.stdout) if history and history.ok else None
    if local is not None:
        age = days_since(local, now.astimezone().replace(tzinfo=None))
        return age, f"last update {local:%Y-%m-%d} (softwareupdate --history)"
    return None, "no software update found in the install history"


def collect_macos(runner: Runner, *, now: datetime) -> Collected:
    notes: dict[str, str] = {}
    sw = runner.run(["sw_vers"])
    name, version = p.sw_vers(sw.stdout) if sw is not None and sw.ok else (None, None)
    uname = runner.run(["uname", "-r"])
    kernel = uname.stdout.strip() if uname is not None and uname.ok else ""
    age, notes["patch_age_days"] = _patch_age(runner, now)
    fde = _text(runner.run(["fdesetup", "status"]))
    disk = p.filevault_on(fde) if fde else None
    fw = _text(runner.run([_SOCKETFILTERFW, "--getglobalstate"]))
    firewall = p.firewall_enabled(fw) if fw else None
    ps = runner.run(["ps", "-axco", "command"])
    processes = p.process_names(ps.stdout) if ps is not None and ps.ok else []
    edr_name = find_agent(processes, MACOS_AGENTS) if processes else None
    edr = (edr_name is not None) if processes else None
    lock_text = _text(runner.run(["sysadminctl", "-screenLock", "status"]))
    lock = p.screen_lock_on(lock_text) if lock_text else None
    for field, value, command in (
        ("disk_encrypted", disk, "fdesetup status"),
        ("firewall_active", firewall, "socketfilterfw --getglobalstate"),
        ("edr_running", edr, "ps -axco command"),
        ("screen_lock_enabled", lock, "sysadminctl -screenLock status"),
    ):
        notes[field] = f"{command}: " + ("unrecognised or no output" if value is None else "read")
    posture = Posture(
        platform="macos",
        os_name=name or "unknown",
        os_version=version or "unknown",
        kernel_version=kernel or "unknown",
        patch_age_days=age,
        disk_encrypted=disk,
        firewall_active=firewall,
        edr_running=edr,
        edr_name=edr_name,
        screen_lock_enabled=lock,
        collected_at=now.astimezone(UTC),
    )
    return Collected(posture=posture, notes=notes)
