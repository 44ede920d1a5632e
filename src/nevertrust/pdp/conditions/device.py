"""On what: the device's compliance, management, platform and posture fields.

Every device condition is false when the request comes from an unknown device.
"""

from __future__ import annotations

from typing import Any

from nevertrust.pdp.conditions._base import Condition

__all__ = ["compliant", "managed", "platform", "posture"]

_UNKNOWN = "the device is unknown (not enrolled)"


def compliant(expected: bool) -> Condition:
    return Condition(
        "device.compliant",
        lambda r, _n: r.device is not None and r.device.compliant is expected,
        lambda r, _n: (
            _UNKNOWN
            if r.device is None
            else f"needs compliant={expected}; device {r.device.device_id} is {r.device.compliant}"
        ),
    )


def managed(expected: bool) -> Condition:
    return Condition(
        "device.managed",
        lambda r, _n: r.device is not None and r.device.managed is expected,
        lambda r, _n: (
            _UNKNOWN
            if r.device is None
            else f"needs managed={expected}; device is {r.device.managed}"
        ),
    )


def platform(names: list[str]) -> Condition:
    allowed = frozenset(names)
    return Condition(
        "device.platform",
        lambda r, _n: r.device is not None and r.device.platform in allowed,
        lambda r, _n: (
            _UNKNOWN
            if r.device is None
            else f"needs a platform in {sorted(allowed)}; device runs {r.device.platform!r}"
        ),
    )


def posture(fields: dict[str, Any]) -> Condition:
    items = tuple(fields.items())

    def test(r: Any, _n: Any) -> bool:
        if r.device is None:
            return False
        got = r.device.posture
        return all(key in got and got[key] == value for key, value in items)

    def explain(r: Any, _n: Any) -> str:
        if r.device is None:
            return _UNKNOWN
        wrong = [
            f"{k}={r.device.posture.get(k)!r} (needs {v!r})"
            for k, v in items
            if r.device.posture.get(k) != v
        ]
        return "posture " + ", ".join(wrong)

    return Condition("device.posture", test, explain)
