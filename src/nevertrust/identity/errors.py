"""Identity errors."""

from __future__ import annotations

from nevertrust.errors import InvalidInput, NotFound, Unauthenticated

__all__ = ["InvalidCredentials", "InvalidHandoff", "UnknownGroup", "UnknownUser", "WeakPassword"]


class InvalidCredentials(Unauthenticated):
    """Wrong user name or password. Deliberately never says which."""

    code = "invalid-credentials"


class InvalidHandoff(Unauthenticated):
    code = "invalid-handoff"


class UnknownUser(NotFound):
    code = "unknown-user"


class UnknownGroup(NotFound):
    code = "unknown-group"


class WeakPassword(InvalidInput):
    code = "weak-password"
