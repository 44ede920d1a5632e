from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from nevertrust.audit import Action, AuditEntry, Outcome, SealedRecord, verify_chain
from nevertrust.audit.chain import GENESIS_HASH, record_digest, seal

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(i: int, **changes: object) -> AuditEntry:
    base = AuditEntry(
        ts=T0 + timedelta(seconds=i),
        actor=f"user:alice{i}",
        action=Action.LOGIN_SUCCEEDED,
        outcome=Outcome.SUCCESS,
        target=f"session:{i}",
        source="127.0.0.1",
        reason="",
        details={"n": i},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def build_chain(n: int) -> list[SealedRecord]:
    records: list[SealedRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        record = seal(entry(i), seq=i, prev_hash=prev)
        records.append(record)
        prev = record.hash
    return records


def verify(records: list[SealedRecord], *, head: SealedRecord | None = None):  # type: ignore[no-untyped-def]
    """Verify against the head of the untouched chain (what the stored head says)."""
    head = head if head is not None else records[-1]
    return verify_chain(records, head_seq=head.seq, head_hash=head.hash)


def rehash(record: SealedRecord, **changes: object) -> SealedRecord:
    """Modify a record and recompute its hash, as an attacker with table access would."""
    changed = dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    digest = record_digest(
        ts=changed.ts,
        actor=changed.actor,
        action=changed.action,
        outcome=changed.outcome,
        target=changed.target,
        source=changed.source,
        reason=changed.reason,
        details=changed.details,
        prev_hash=changed.prev_hash,
    )
    return dataclasses.replace(changed, hash=digest)


def test_intact_chain_verifies() -> None:
    records = build_chain(5)
    report = verify(records)
    assert report.intact
    assert report.problems == []
    assert report.checked == 5


def test_empty_chain_with_empty_head_verifies() -> None:
    report = verify_chain([], head_seq=0, head_hash=GENESIS_HASH)
    assert report.intact and report.checked == 0


def test_first_record_links_to_genesis_and_each_record_to_the_previous() -> None:
    records = build_chain(3)
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert len({r.hash for r in records}) == 3


def test_seal_normalises_time_to_utc_and_canonicalises_details() -> None:
    plus_two = timezone(timedelta(hours=2))
    record = seal(
        entry(1, ts=datetime(2026, 1, 1, 14, 0, tzinfo=plus_two), details={"b": 1, "a": [2]}),
        seq=1,
        prev_hash=GENESIS_HASH,
    )
    assert record.ts == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert record.ts.utcoffset() == timedelta(0)
    assert record.details == '{"a":[2],"b":1}'
    assert record.action == "identity:login:succeeded"
    assert record.outcome == "success"


def test_seal_truncates_long_fields_before_hashing() -> None:
    record = seal(entry(1, actor="a" * 500, target="t" * 900), seq=1, prev_hash=GENESIS_HASH)
    assert len(record.actor) == 200
    assert len(record.target) == 500
    assert verify([record]).intact


def test_same_entry_sealed_at_a_different_place_gets_a_different_hash() -> None:
    first = seal(entry(1), seq=1, prev_hash=GENESIS_HASH)
    other = seal(entry(1), seq=1, prev_hash="f" * 64)
    assert first.hash != other.hash


def test_detects_a_modified_record() -> None:
    records = build_chain(5)
    records[2] = dataclasses.replace(records[2], actor="user:mallory")
    report = verify(records)
    assert not report.intact
    assert report.problems == ["record 3 modified: its content does not match its hash"]


def test_detects_a_deleted_middle_record() -> None:
    records = build_chain(5)
    head = records[-1]
    del records[2]
    report = verify(records, head=head)
    assert not report.intact
    assert "record 3 deleted: the sequence jumps from 2 to 4" in report.problems


def test_detects_several_deleted_middle_records_as_a_range() -> None:
    records = build_chain(6)
    head = records[-1]
    del records[1:4]
    report = verify(records, head=head)
    assert "record 2-4 deleted: the sequence jumps from 1 to 5" in report.problems


def test_detects_records_deleted_from_the_end_by_the_head() -> None:
    records = build_chain(5)
    head = records[-1]
    report = verify(records[:3], head=head)
    assert report.problems == [
        "chain ends at record 3 but its head says 5: records were deleted from the end"
    ]


def test_detects_records_added_outside_the_log() -> None:
    records = build_chain(5)
    report = verify(records, head=records[2])
    assert report.problems == [
        "chain ends at record 5 but its head says 3: records were added outside the log"
    ]


def test_detects_a_head_hash_mismatch() -> None:
    records = build_chain(3)
    report = verify_chain(records, head_seq=3, head_hash="a" * 64)
    assert report.problems == ["last record 3 does not match the stored chain head"]


def test_detects_two_swapped_records() -> None:
    records = build_chain(5)
    # Swap the contents of records 2 and 3 but keep the sequence numbers in place, as an
    # UPDATE of two rows would.
    second, third = records[1], records[2]
    records[1] = dataclasses.replace(third, seq=2)
    records[2] = dataclasses.replace(second, seq=3)
    report = verify(records)
    assert not report.intact
    assert any("reordered" in p and "record 3" in p for p in report.problems), report.problems
    assert any("record 2" in p for p in report.problems), report.problems


def test_swapped_record_message_names_where_it_belongs() -> None:
    records = build_chain(5)
    second, third = records[1], records[2]
    records[1] = dataclasses.replace(third, seq=2)
    records[2] = dataclasses.replace(second, seq=3)
    report = verify(records)
    assert "record 3 reordered: it belongs after record 1, not after record 2" in report.problems
    assert "record 3 reordered: record 2 belongs directly after it" in report.problems


def test_detects_a_modified_record_whose_hash_was_recomputed() -> None:
    records = build_chain(5)
    records[1] = rehash(records[1], outcome="failure")
    report = verify(records)
    assert not report.intact
    # Record 2 now hashes correctly, but record 3 still points at the old hash of record 2.
    assert report.problems == [
        "record 3 does not follow the record before it: a record was deleted or inserted"
    ]


def test_detects_a_rehashed_last_record_through_the_head() -> None:
    records = build_chain(4)
    head = records[-1]
    records[-1] = rehash(records[-1], reason="nothing to see")
    report = verify(records, head=head)
    assert report.problems == ["last record 4 does not match the stored chain head"]


def test_detects_a_record_inserted_into_the_middle() -> None:
    records = build_chain(4)
    forged = seal(entry(99), seq=3, prev_hash=records[1].hash)
    renumbered = [dataclasses.replace(r, seq=r.seq + 1) for r in records[2:]]
    report = verify([*records[:2], forged, *renumbered], head=records[-1])
    assert not report.intact


def test_problems_are_capped() -> None:
    records = build_chain(10)
    tampered = [dataclasses.replace(r, actor="x") for r in records]
    report = verify_chain(tampered, head_seq=10, head_hash=records[-1].hash, max_problems=3)
    assert len(report.problems) == 3
    assert report.checked == 10


_FIELDS = ["ts", "actor", "action", "outcome", "target", "source", "reason", "details", "prev_hash"]


def _changed_value(record: SealedRecord, name: str, text: str) -> object:
    if name == "ts":
        return record.ts + timedelta(microseconds=1 + len(text))
    current = getattr(record, name)
    return current + (text or "x")


@given(
    length=st.integers(min_value=1, max_value=8),
    data=st.data(),
    field_name=st.sampled_from([*_FIELDS, "hash", "seq"]),
    text=st.text(max_size=5),
)
def test_any_single_field_modification_of_any_record_is_detected(
    length: int, data: st.DataObject, field_name: str, text: str
) -> None:
    records = build_chain(length)
    head = records[-1]
    index = data.draw(st.integers(min_value=0, max_value=length - 1), label="index")
    record = records[index]
    if field_name == "seq":
        value: object = record.seq + data.draw(st.sampled_from([-1, 1, 5]), label="delta")
    elif field_name == "hash":
        value = record.hash[:-1] + ("0" if record.hash[-1] != "0" else "1")
    else:
        value = _changed_value(record, field_name, text)
    records[index] = dataclasses.replace(record, **{field_name: value})  # type: ignore[arg-type]
    report = verify(records, head=head)
    assert not report.intact, (field_name, index)


@given(
    length=st.integers(min_value=2, max_value=8),
    data=st.data(),
    field_name=st.sampled_from(_FIELDS[:-1]),
)
def test_any_rehashed_modification_is_detected(
    length: int, data: st.DataObject, field_name: str
) -> None:
    records = build_chain(length)
    head = records[-1]
    index = data.draw(st.integers(min_value=0, max_value=length - 1), label="index")
    records[index] = rehash(
        records[index], **{field_name: _changed_value(records[index], field_name, "!")}
    )
    assert not verify(records, head=head).intact
