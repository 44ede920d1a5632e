"""Identity: people, groups, passwords, sessions."""

from __future__ import annotations

from nevertrust.identity.authentication import AuthService, IssuedSession
from nevertrust.identity.directory import ADMIN_GROUP, DirectoryService, check_password_policy
from nevertrust.identity.errors import (
    InvalidCredentials,
    InvalidHandoff,
    UnknownGroup,
    UnknownUser,
    WeakPassword,
)
from nevertrust.identity.models import GroupRecord, SessionKind, SessionRecord, UserRecord
from nevertrust.identity.passwords import Passwords

__all__ = [
    "ADMIN_GROUP",
    "AuthService",
    "DirectoryService",
    "GroupRecord",
    "InvalidCredentials",
    "InvalidHandoff",
    "IssuedSession",
    "Passwords",
    "SessionKind",
    "SessionRecord",
    "UnknownGroup",
    "UnknownUser",
    "UserRecord",
    "WeakPassword",
    "check_password_policy",
]
