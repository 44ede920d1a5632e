"""The audit hash chain under concurrent writers, the batching writer, and tampering."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from sqlalchemy import text

from nevertrust.app import Services
from nevertrust.audit import AuditLog

from ._support import audit_records, await_ready, entry, finish, go, peer_process

THREADS = 4
PER_THREAD = 25
PER_PROCESS = 40

_PEER_APPENDS = f"""
from datetime import UTC, datetime
from nevertrust.audit import Action, AuditEntry, Outcome
wait_for_go()
for n in range({PER_PROCESS}):
    svc.audit.append([
        AuditEntry(ts=datetime.now(UTC), actor="process", action=Action.DECISION_DENIED,
                   outcome=Outcome.DENY, details={{"n": n}})
    ])
"""


def assert_gapless_intact_chain(svc: Services, total: int) -> None:
    report = svc.audit.verify()
    assert report.problems == []
    assert report.checked == total
    records = audit_records(svc)
    assert [r.seq for r in records] == list(range(1, total + 1))
    with svc.uow.read() as uow:
        assert uow.audit.head() == (total, records[-1].hash)


def test_concurrent_appenders_keep_one_gapless_intact_chain(any_services: Services) -> None:
    svc = any_services
    barrier = Barrier(THREADS + 2)

    def append_many(worker: int) -> None:
        barrier.wait()
        for n in range(PER_THREAD):
            svc.audit.append([entry(f"thread-{worker}", n)])

    def add_groups() -> None:
        barrier.wait()
        for n in range(PER_THREAD):  # other writes append to the same chain
            svc.directory.add_group(f"g{n}", actor="thread-groups")

    # Another process, with its own engine, appends at the same time (the CLI, a replica).
    process = peer_process(svc, _PEER_APPENDS)
    await_ready(process)
    with ThreadPoolExecutor(THREADS + 1) as pool:
        futures = [pool.submit(append_many, w) for w in range(THREADS)]
        futures.append(pool.submit(add_groups))
        barrier.wait()
        go(process)
        for future in futures:
            future.result()
    finish(process)

    total = (THREADS + 1) * PER_THREAD + PER_PROCESS
    assert_gapless_intact_chain(svc, total)
    records = audit_records(svc)
    for actor in [f"thread-{w}" for w in range(THREADS)] + ["process"]:
        mine = [r.details for r in records if r.actor == actor]
        count = PER_PROCESS if actor == "process" else PER_THREAD
        # Each writer's own records keep their order within the chain.
        assert mine == [f'{{"n":{n}}}' for n in range(count)]


def test_writer_thread_flushes_everything_enqueued(any_services: Services) -> None:
    audit = any_services.audit
    for n in range(300):
        assert audit.enqueue(entry("queued-before-start", n))

    audit.start()
    try:
        for n in range(300):
            assert audit.enqueue(entry("queued-while-running", n))
        assert audit.wait_flushed(timeout=10)
        assert audit.pending == 0
        assert len(audit_records(any_services)) == 600
        for n in range(100):
            audit.enqueue(entry("queued-before-stop", n))
    finally:
        audit.stop()

    assert audit.pending == 0
    assert_gapless_intact_chain(any_services, 700)
    assert [r.details for r in audit_records(any_services)[:3]] == [
        '{"n":0}',
        '{"n":1}',
        '{"n":2}',
    ]


def test_enqueue_refuses_when_the_queue_is_full(any_services: Services) -> None:
    audit = AuditLog(uow=any_services.uow, flush_interval=0.05, queue_limit=3)

    accepted = [audit.enqueue(entry("gateway", n)) for n in range(4)]

    assert accepted == [True, True, True, False]
    assert audit.flush_now() == 3
    assert audit.enqueue(entry("gateway", 4))


@pytest.fixture
def five_records(any_services: Services) -> Services:
    for n in range(5):
        any_services.audit.append([entry("writer", n)])
    assert any_services.audit.verify().intact
    return any_services


def tamper(svc: Services, sql: str) -> None:
    with svc.db.engine.begin() as conn:
        conn.execute(text(sql))


def test_verify_names_a_modified_record(five_records: Services) -> None:
    tamper(five_records, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")

    report = five_records.audit.verify()

    assert not report.intact
    assert report.problems == ["record 3 modified: its content does not match its hash"]


def test_verify_names_a_deleted_record(five_records: Services) -> None:
    tamper(five_records, "DELETE FROM audit_log WHERE seq = 3")

    report = five_records.audit.verify()

    assert not report.intact
    assert any(p.startswith("record 3 deleted") for p in report.problems), report.problems


def test_verify_notices_records_cut_off_the_end(five_records: Services) -> None:
    tamper(five_records, "DELETE FROM audit_log WHERE seq >= 4")

    report = five_records.audit.verify()

    assert report.problems == [
        "chain ends at record 3 but its head says 5: records were deleted from the end"
    ]


def test_verify_notices_a_rewritten_hash(five_records: Services) -> None:
    # Recomputing one record's hash is not enough: the next record still links to the old one.
    tamper(five_records, "UPDATE audit_log SET hash = prev_hash WHERE seq = 2")

    report = five_records.audit.verify()

    assert not report.intact
    assert any("record 2" in p for p in report.problems), report.problems
