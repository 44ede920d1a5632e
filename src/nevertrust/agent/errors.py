"""Errors of the device agent; the CLI prints them as ``error[code]: message``.

Each says what to do next: an agent runs unattended from a timer, and its log line is
often the only thing an operator reads.
"""

from __future__ import annotations

from nevertrust.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    NotFound,
    Unauthenticated,
)

__all__ = [
    "AgentHomeUnsafe",
    "AlreadyEnrolled",
    "BadServerResponse",
    "EnrolmentRefused",
    "NotEnrolled",
    "ReportRefused",
    "ServerUnreachable",
]


class AgentHomeUnsafe(ConfigError):
    """The agent home (or the key in it) could be changed or read by someone else."""

    code = "agent-home-unsafe"


class NotEnrolled(NotFound):
    code = "not-enrolled"


class AlreadyEnrolled(AlreadyExists):
    code = "already-enrolled"


class ServerUnreachable(BackendUnavailable):
    code = "server-unreachable"


class BadServerResponse(BackendUnavailable):
    """The server answered, but not with what the device contract says."""

    code = "bad-server-response"


class EnrolmentRefused(Unauthenticated):
    """The server refused the enrolment (``details['server_code']`` says why)."""

    code = "enrolment-refused"


class ReportRefused(Unauthenticated):
    """The server refused a signed report: stale, replayed, forged or an unknown device."""

    code = "report-refused"
