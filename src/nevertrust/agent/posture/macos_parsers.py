"""Pure parsers of the macOS commands' output (``macos.py`` runs them).

Unknown text gives ``None`` (a ``null`` field), never a guess. Tested on recorded outputs
in tests/vectors/agent/macos/ (hand-written from Apple's documented formats).
"""

from __future__ import annotations

import plistlib
import re
from datetime import UTC, datetime
from typing import Any
from xml.parsers.expat import ExpatError

__all__ = [
    "filevault_on",
    "firewall_enabled",
    "install_history_newest",
    "process_names",
    "screen_lock_on",
    "softwareupdate_history_newest",
    "sw_vers",
]

# Installed in the background every few days whatever the state of the OS: counting them
# would make a Mac that never took an OS update look freshly patched.
_BACKGROUND_DATA = re.compile(
    r"^(XProtect|MRT|Gatekeeper|Background Task Management|Bridge OS)", re.IGNORECASE
)
_UPDATER = {"softwareupdated", "Software Update", "softwareupdate"}


def sw_vers(text: str) -> tuple[str | None, str | None]:
    """(ProductName, ProductVersion) from ``sw_vers``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields.get("ProductName") or None, fields.get("ProductVersion") or None


def filevault_on(text: str) -> bool | None:
    """``fdesetup status``: True only when FileVault is on and no conversion is under way.

    "Encryption in progress" still has unencrypted blocks on disk, and "Deferred
    enablement" only turns FileVault on at the next logout: both are not (yet) encrypted.
    """
    lowered = text.lower()
    if "in progress" in lowered or "paused" in lowered or "deferred enablement" in lowered:
        return False
    if "filevault is on." in lowered:
        return True
    if "filevault is off." in lowered:
        return False
    return None


_FW_STATE = re.compile(r"\(State = (\d)\)")


def firewall_enabled(text: str) -> bool | None:
    """``socketfilterfw --getglobalstate``: State 1 (on) or 2 (block all) is on, 0 off."""
    match = _FW_STATE.search(text)
    if match:
        return match.group(1) in ("1", "2")
    lowered = text.lower()
    if "firewall is enabled" in lowered or "firewall is blocking" in lowered:
        return True
    if "firewall is disabled" in lowered:
        return False
    return None


def _counts(name: str) -> bool:
    return bool(name) and not _BACKGROUND_DATA.match(name)


def install_history_newest(data: bytes) -> datetime | None:
    """Newest software update in /Library/Receipts/InstallHistory.plist (dates are UTC).

    Only entries installed by the software update service count (not App Store or
    Installer packages), and not the background security data above.
    """
    try:
        entries: Any = plistlib.loads(data)
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError, OverflowError):
        return None
    if not isinstance(entries, list):
        return None
    newest: datetime | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        when, name = entry.get("date"), str(entry.get("displayName", ""))
        if not isinstance(when, datetime) or entry.get("processName") not in _UPDATER:
            continue
        if not _counts(name):
            continue
        moment = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        newest = moment if newest is None or moment > newest else newest
    return newest


_HISTORY_DATE = re.compile(r"\s(\d{2})/(\d{2})/(\d{4}), (\d{2}):(\d{2}):(\d{2})\s*$")


def softwareupdate_history_newest(text: str) -> datetime | None:
    """Newest ``softwareupdate --history`` row, local time (naive).

    Only the US layout (MM/DD/YYYY, HH:MM:SS) is read. A first number above 12 shows a
    day-first locale; since 05/06 could then be either, the whole output is refused.
    """
    found: list[tuple[str, datetime]] = []
    for line in text.splitlines():
        match = _HISTORY_DATE.search(line)
        if not match:
            continue
        month, day, year, hh, mm, ss = (int(g) for g in match.groups())
        if month > 12:
            return None
        try:
            moment = datetime(year, month, day, hh, mm, ss)  # local time, as printed
        except ValueError:
            return None
        found.append((line[: match.start()].strip(), moment))
    moments = [when for name, when in found if _counts(name)]
    return max(moments) if moments else None


def process_names(text: str) -> list[str]:
    """``ps -axco command``: one name a line under a COMMAND header."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines[1:] if line] if lines[:1] == ["COMMAND"] else []


_LOCK_DELAY = re.compile(r"screenLock delay is (immediate|\d+ seconds?)")


def screen_lock_on(text: str) -> bool | None:
    """``sysadminctl -screenLock status`` (it writes to standard error)."""
    if _LOCK_DELAY.search(text):
        return True
    if re.search(r"screenLock is off", text):
        return False
    return None
