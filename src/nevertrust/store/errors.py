"""Storage errors, translated from driver errors at this boundary."""

from __future__ import annotations

from nevertrust.errors import BackendUnavailable

__all__ = ["DatabaseUnavailable"]


class DatabaseUnavailable(BackendUnavailable):
    code = "database-unavailable"
