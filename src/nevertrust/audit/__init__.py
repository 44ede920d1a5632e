"""Tamper-evident audit log."""

from __future__ import annotations

from nevertrust.audit.chain import ChainReport, verify_chain
from nevertrust.audit.models import Action, AuditEntry, Outcome, SealedRecord
from nevertrust.audit.service import AuditLog

__all__ = [
    "Action",
    "AuditEntry",
    "AuditLog",
    "ChainReport",
    "Outcome",
    "SealedRecord",
    "verify_chain",
]
