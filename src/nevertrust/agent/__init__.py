"""The device agent (``nevertrust agent``): enrol this machine, report its posture signed
with the device key, and keep the device certificate renewed.

It is a client only: nothing here imports the server, the web stack or the store, so the
agent installs and starts small on a laptop (``cli/agent.py`` is the thin command).
"""

from __future__ import annotations

from nevertrust.agent.client import ServerClient, ServerEndpoint
from nevertrust.agent.errors import (
    AgentHomeUnsafe,
    AlreadyEnrolled,
    BadServerResponse,
    EnrolmentRefused,
    NotEnrolled,
    ReportRefused,
    ServerUnreachable,
)
from nevertrust.agent.home import AgentHome
from nevertrust.agent.models import AgentState, Collected, Enrolment, Posture, ReportOutcome
from nevertrust.agent.posture import collect_posture
from nevertrust.agent.service import Agent, Enrolled, Reported, Status

__all__ = [
    "Agent",
    "AgentHome",
    "AgentHomeUnsafe",
    "AgentState",
    "AlreadyEnrolled",
    "BadServerResponse",
    "Collected",
    "Enrolled",
    "Enrolment",
    "EnrolmentRefused",
    "NotEnrolled",
    "Posture",
    "ReportOutcome",
    "ReportRefused",
    "Reported",
    "ServerClient",
    "ServerEndpoint",
    "ServerUnreachable",
    "Status",
    "collect_posture",
]
