"""Pure parsers of the Windows commands' output (``windows.py`` runs them).

Only the English output of ``manage-bde`` and ``netsh`` is read; any other language gives
``None`` (a ``null`` field), never a guess. Tested on recorded outputs in
tests/vectors/agent/windows/ (hand-written from Microsoft's documented formats).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "bitlocker_protected",
    "firewall_all_profiles_on",
    "hotfix_newest",
    "os_caption_version",
    "reg_values",
    "screen_lock_on",
    "tasklist_names",
]


def os_caption_version(text: str) -> tuple[str | None, str | None]:
    """(Caption, Version) from ``Get-CimInstance Win32_OperatingSystem | ConvertTo-Json``."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    caption, version = data.get("Caption"), data.get("Version")
    return (
        caption.strip() if isinstance(caption, str) and caption.strip() else None,
        version.strip() if isinstance(version, str) and version.strip() else None,
    )


def _bde_field(text: str, name: str) -> str | None:
    match = re.search(rf"^\s*{name}:\s*(.+?)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def bitlocker_protected(text: str) -> bool | None:
    """``manage-bde -status C:``: True when fully (or used-space) encrypted with protection on.

    "Encryption in Progress" still has plain blocks; "Protection Off" (suspended) leaves
    the key in the clear on the disk: both are not encrypted for our purpose.
    """
    conversion = _bde_field(text, "Conversion Status")
    protection = _bde_field(text, "Protection Status")
    if conversion is None or protection is None:
        return None
    if conversion in ("Fully Encrypted", "Used Space Only Encrypted"):
        if protection == "Protection On":
            return True
        if protection == "Protection Off":
            return False
        return None
    if conversion in (
        "Fully Decrypted",
        "Encryption in Progress",
        "Decryption in Progress",
        "Encryption Paused",
        "Decryption Paused",
    ):
        return False
    return None


_PROFILE = re.compile(r"^(\w+) Profile Settings:\s*$")
_STATE = re.compile(r"^State\s+(ON|OFF)\s*$")


def firewall_all_profiles_on(text: str) -> bool | None:
    """``netsh advfirewall show allprofiles state``: on only when every profile is ON.

    Windows applies the profile of whichever network the machine joins, so one profile
    off is a firewall that is off somewhere the laptop goes.
    """
    states: dict[str, bool | None] = {}
    profile: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        header = _PROFILE.match(line)
        if header:
            profile = header.group(1)
            states[profile] = None
            continue
        state = _STATE.match(line)
        if state and profile is not None:
            states[profile] = state.group(1) == "ON"
    if not states:
        return None
    if any(v is False for v in states.values()):
        return False
    if any(v is None for v in states.values()):
        return None
    return True


_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def _hotfix_date(value: Any) -> datetime | None:
    if isinstance(value, dict):  # Windows PowerShell 5.1: {"value": "/Date(ms)/", ...}
        value = value.get("value")
    if not isinstance(value, str):
        return None
    match = _MS_DATE.match(value.strip())
    if match:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
    try:  # PowerShell 7: ISO-8601
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None  # "6/11/2024 12:00:00 AM" and other locale text: refused, not guessed
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hotfix_newest(text: str) -> datetime | None:
    """Newest InstalledOn in ``Get-HotFix | ConvertTo-Json`` (an object when only one)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    items = data if isinstance(data, list) else [data]
    moments = [
        m
        for item in items
        if isinstance(item, dict)
        if (m := _hotfix_date(item.get("InstalledOn")))
    ]
    return max(moments) if moments else None


def tasklist_names(text: str) -> list[str]:
    """Image names from ``tasklist /fo csv`` (with or without the header row)."""
    rows = list(csv.reader(io.StringIO(text)))
    names = [row[0].strip() for row in rows if row and row[0].strip()]
    return names[1:] if names[:1] == ["Image Name"] else names


_REG_LINE = re.compile(r"^\s{2,}(\S.*?)\s{2,}(REG_\w+)\s{2,}(.*?)\s*$")


def reg_values(text: str) -> dict[str, str]:
    """Name -> data of one key's values in ``reg query`` output (REG_DWORD as decimal)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _REG_LINE.match(line)
        if not match:
            continue
        name, kind, data = match.groups()
        if kind in ("REG_DWORD", "REG_QWORD") and data.lower().startswith("0x"):
            try:
                data = str(int(data, 16))
            except ValueError:
                continue
        values[name] = data
    return values


def _positive(value: str | None) -> bool:
    return value is not None and value.isdigit() and int(value) > 0


def screen_lock_on(
    *,
    desktop: Mapping[str, str] | None,
    policy: Mapping[str, str] | None,
    inactivity: Mapping[str, str] | None,
) -> bool | None:
    """Whether an idle session locks.

    Either the machine's inactivity limit (InactivityTimeoutSecs > 0, Policies\\System), or
    a screen saver that is active, has a timeout and asks for the password on resume
    (ScreenSaveActive, ScreenSaveTimeOut, ScreenSaverIsSecure; group policy's values win
    over the user's). With the user's desktop key unreadable: None.
    """
    if inactivity is not None and _positive(inactivity.get("InactivityTimeoutSecs")):
        return True
    if desktop is None:
        return None
    merged = {**desktop, **(policy or {})}
    return (
        merged.get("ScreenSaveActive") == "1"
        and merged.get("ScreenSaverIsSecure") == "1"
        and _positive(merged.get("ScreenSaveTimeOut"))
    )
