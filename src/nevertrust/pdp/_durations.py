"""Durations written as ``90s``, ``15m``, ``2h`` or ``1d``."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ValueError naming the expected form."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 1d, got {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]
