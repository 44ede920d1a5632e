"""Windows posture: which commands answer each field (parsing is in ``windows_parsers.py``).

- OS and kernel: ``Get-CimInstance Win32_OperatingSystem | ConvertTo-Json`` (Caption, Version).
- Patch age: ``Get-HotFix | ConvertTo-Json`` (newest InstalledOn).
- Disk encryption: ``manage-bde -status C:`` (needs an elevated agent; else null).
- Firewall: ``netsh advfirewall show allprofiles state`` (every profile must be ON).
- EDR: ``tasklist /fo csv /nh`` against the list in ``edr.py``.
- Screen lock: ``reg query`` of the user's Control Panel\\Desktop, its group-policy
  counterpart and the machine's InactivityTimeoutSecs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nevertrust.agent.models import Collected, Posture
from nevertrust.agent.posture import windows_parsers as p
from nevertrust.agent.posture._age import days_since
from nevertrust.agent.posture._run import Runner
from nevertrust.agent.posture.edr import WINDOWS_AGENTS, find_agent

__all__ = ["collect_windows"]

_DESKTOP = r"HKCU\Control Panel\Desktop"
_DESKTOP_POLICY = r"HKCU\Software\Policies\Microsoft\Windows\Control Panel\Desktop"
_SYSTEM_POLICY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System"


def _powershell(runner: Runner, command: str) -> str | None:
    out = runner.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", command])
    return out.stdout if out is not None and out.ok else None


def _reg(runner: Runner, *args: str) -> dict[str, str] | None:
    out = runner.run(["reg.exe", "query", *args])
    return p.reg_values(out.stdout) if out is not None and out.ok else None


def collect_windows(runner: Runner, *, now: datetime) -> Collected:
    notes: dict[str, str] = {}
    os_json = _powershell(runner, "Get-CimInstance Win32_OperatingSystem | ConvertTo-Json")
    name, version = p.os_caption_version(os_json) if os_json else (None, None)
    hotfix_json = _powershell(runner, "Get-HotFix | ConvertTo-Json")
    newest = p.hotfix_newest(hotfix_json) if hotfix_json else None
    notes["patch_age_days"] = (
        f"last hotfix {newest:%Y-%m-%d} (Get-HotFix)" if newest else "no dated hotfix found"
    )
    bde = runner.run(["manage-bde.exe", "-status", "C:"])
    disk = p.bitlocker_protected(bde.stdout) if bde is not None and bde.ok else None
    netsh = runner.run(["netsh.exe", "advfirewall", "show", "allprofiles", "state"])
    firewall = p.firewall_all_profiles_on(netsh.stdout) if netsh is not None and netsh.ok else None
    tasks = runner.run(["tasklist.exe", "/fo", "csv", "/nh"])
    processes = p.tasklist_names(tasks.stdout) if tasks is not None and tasks.ok else []
    edr_name = find_agent(processes, WINDOWS_AGENTS, fold=True) if processes else None
    edr = (edr_name is not None) if processes else None
    lock = p.screen_lock_on(
        desktop=_reg(runner, _DESKTOP),
        policy=_reg(runner, _DESKTOP_POLICY),
        inactivity=_reg(runner, _SYSTEM_POLICY, "/v", "InactivityTimeoutSecs"),
    )
    for field, value, command in (
        ("disk_encrypted", disk, "manage-bde -status C: (needs an elevated agent)"),
        ("firewall_active", firewall, "netsh advfirewall show allprofiles state"),
        ("edr_running", edr, "tasklist /fo csv"),
        ("screen_lock_enabled", lock, "reg query Control Panel\\Desktop"),
    ):
        notes[field] = f"{command}: " + ("unrecognised or no output" if value is None else "read")
    posture = Posture(
        platform="windows",
        os_name=name or "unknown",
        os_version=version or "unknown",
        kernel_version=version or "unknown",
        patch_age_days=None if newest is None else days_since(newest, now),
        disk_encrypted=disk,
        firewall_active=firewall,
        edr_running=edr,
        edr_name=edr_name,
        screen_lock_enabled=lock,
        collected_at=now.astimezone(UTC),
    )
    return Collected(posture=posture, notes=notes)
