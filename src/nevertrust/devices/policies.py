"""Compliance policies per platform: the stored one or the default, and validated changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from nevertrust.devices.compliance import default_policy
from nevertrust.devices.errors import InvalidDevicePolicy
from nevertrust.devices.models import CompliancePolicy, Platform
from nevertrust.devices.versions import parse_version_strict

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork

__all__ = ["PolicyChange", "apply_change", "parse_platform", "policy_for"]


def parse_platform(value: str) -> Platform:
    try:
        return Platform(value.strip().lower())
    except ValueError:
        known = ", ".join(p.value for p in Platform)
        raise InvalidDevicePolicy(
            f"platform: expected one of {known}, got {value!r}", field="platform"
        ) from None


class PolicyChange(BaseModel):
    """The fields to change; a field left out keeps its value, ``null`` turns it off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_os_version: str | None = Field(default=None, max_length=64)
    max_patch_age_days: StrictInt | None = Field(default=None, ge=0, le=3650)
    require_disk_encryption: StrictBool = False
    require_firewall: StrictBool = False
    require_edr: StrictBool = False
    require_screen_lock: StrictBool = False


def apply_change(current: CompliancePolicy, change: Mapping[str, Any]) -> CompliancePolicy:
    """``current`` with the fields named in ``change`` replaced, after validating them."""
    try:
        parsed = PolicyChange.model_validate(dict(change))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "policy"
        raise InvalidDevicePolicy(f"{where}: {first.get('msg')}", field=where) from exc
    values = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    version = values.get("min_os_version")
    if version is not None:
        if version.strip().lower() in ("", "none", "off"):
            values["min_os_version"] = None
        elif parse_version_strict(version) is None:
            raise InvalidDevicePolicy(
                f"min_os_version: expected a dotted number such as 12, 12.7 or 10.0.22631, "
                f"got {version!r}",
                field="min_os_version",
            )
        else:
            values["min_os_version"] = version.strip()
    return replace(current, **values)


def policy_for(uow: UnitOfWork, platform: Platform) -> CompliancePolicy:
    """The policy in force for ``platform``: the stored one, else the default."""
    return uow.device_policies.get(platform) or default_policy(platform)
