"""Names of users, groups and apps: one grammar, because app names become host labels."""

from __future__ import annotations

import re

from nevertrust.errors import InvalidInput

__all__ = ["NAME_PATTERN", "validate_name"]

# Lower-case DNS label rules so an app name is always a valid host label (RFC 1123 §2.1),
# and user/group names stay unambiguous in logs and assertions.
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_USER_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
RESERVED_APP_NAMES = frozenset({"auth", "www", "api"})


def validate_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid name of ``kind`` (user, group, app), else raise."""
    pattern = _USER_PATTERN if kind == "user" else NAME_PATTERN
    if not pattern.fullmatch(value):
        raise InvalidInput(
            f"{kind} name {value!r} is invalid: expected 1-63 lower-case letters, digits"
            f"{', dots, underscores' if kind == 'user' else ''} or hyphens, "
            "starting and ending with a letter or digit",
            field="name",
        )
    if kind == "app" and value in RESERVED_APP_NAMES:
        raise InvalidInput(f"app name {value!r} is reserved for the platform", field="name")
    return value
