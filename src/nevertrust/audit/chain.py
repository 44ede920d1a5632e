"""The hash chain: each record's hash covers its fields and the previous record's hash.

SHA-256 over a JSON array of the fields (unambiguous, unlike joining with a separator).
The sequence number orders records but is not hashed: order is protected by the links, so
a reordering shows up as links pointing at the wrong neighbour, which ``verify_chain``
names. The chain head (last sequence and hash) is stored separately, so cutting records
off the end is detected too.

Limit: someone who can rewrite the whole table *and* the head can forge a consistent
chain. Anchoring the head outside the database (export, signed checkpoints) closes that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nevertrust.audit.models import AuditEntry, SealedRecord

__all__ = [
    "GENESIS_HASH",
    "ChainReport",
    "canonical_details",
    "record_digest",
    "seal",
    "verify_chain",
]

GENESIS_HASH = "0" * 64

# Built once: json.dumps with any non-default option makes a new encoder per call, which
# was a third of the cost of sealing a record. Same options, same bytes.
_DETAILS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_PAYLOAD = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical_details(details: dict[str, object]) -> str:
    return _DETAILS.encode(details)


def _canonical_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def record_digest(
    *,
    ts: datetime,
    actor: str,
    action: str,
    outcome: str,
    target: str,
    source: str,
    reason: str,
    details: str,
    prev_hash: str,
) -> str:
    payload = _PAYLOAD.encode(
        [_canonical_ts(ts), actor, action, outcome, target, source, reason, details, prev_hash]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def seal(entry: AuditEntry, *, seq: int, prev_hash: str) -> SealedRecord:
    """Give ``entry`` its place after ``prev_hash``. Column limits are applied before hashing."""
    details = canonical_details(entry.details)
    ts = entry.ts.astimezone(UTC)
    fields = {
        "actor": entry.actor[:200],
        "action": str(entry.action),
        "outcome": str(entry.outcome),
        "target": entry.target[:500],
        "source": entry.source[:200],
        "reason": entry.reason[:200],
    }
    digest = record_digest(ts=ts, details=details, prev_hash=prev_hash, **fields)
    return SealedRecord(seq=seq, ts=ts, details=details, prev_hash=prev_hash, hash=digest, **fields)


@dataclass(slots=True)
class ChainReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chain(
    records: Iterable[SealedRecord], *, head_seq: int, head_hash: str, max_problems: int = 20
) -> ChainReport:
    """Walk the chain from genesis, in sequence order, and name every broken link."""
    report = ChainReport()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    seen: dict[str, int] = {GENESIS_HASH: 0}
    # prev_hash values that pointed at a record not seen yet -> seq of the record pointing.
    dangling: dict[str, int] = {}

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)

    for record in records:
        report.checked += 1
        if record.seq > expected_seq:
            gap = (
                str(expected_seq)
                if record.seq == expected_seq + 1
                else f"{expected_seq}-{record.seq - 1}"
            )
            problem(
                f"record {gap} deleted: the sequence jumps from {expected_seq - 1} to {record.seq}"
            )
        recomputed = record_digest(
            ts=record.ts,
            actor=record.actor,
            action=record.action,
            outcome=record.outcome,
            target=record.target,
            source=record.source,
            reason=record.reason,
            details=record.details,
            prev_hash=record.prev_hash,
        )
        if recomputed != record.hash:
            problem(f"record {record.seq} modified: its content does not match its hash")
        elif record.prev_hash != prev_hash:
            if record.prev_hash in seen:
                problem(
                    f"record {record.seq} reordered: it belongs after record "
                    f"{seen[record.prev_hash]}, not after record {expected_seq - 1}"
                )
            elif record.seq <= expected_seq:
                dangling[record.prev_hash] = record.seq
        if record.hash in dangling:
            problem(
                f"record {record.seq} reordered: record {dangling.pop(record.hash)} "
                f"belongs directly after it"
            )
        seen[record.hash] = record.seq
        prev_hash = record.hash
        expected_seq = record.seq + 1
    for seq in dangling.values():
        problem(
            f"record {seq} does not follow the record before it: a record was deleted or inserted"
        )
    last_seq = expected_seq - 1
    if last_seq != head_seq:
        how = "deleted from the end" if last_seq < head_seq else "added outside the log"
        problem(f"chain ends at record {last_seq} but its head says {head_seq}: records were {how}")
    elif prev_hash != head_hash:
        problem(f"last record {last_seq} does not match the stored chain head")
    return report
