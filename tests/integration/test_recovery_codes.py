"""Recovery codes on both backends: one use each, any spelling, replaced as a set."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.errors import InvalidInput
from nevertrust.identity import UnknownUser
from nevertrust.identity.models import UserKind
from nevertrust.store.tables import recovery_codes

from ._support import PASSWORD, audit_records, changes, last_change_id


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    return any_services


def uid(svc: Services, name: str = "alice") -> int:
    return svc.directory.get_user(name).id


def test_ten_codes_each_work_exactly_once(svc: Services) -> None:
    codes = svc.recovery_codes.generate("alice", actor="user:alice")

    assert len(codes) == len(set(codes)) == 10
    assert svc.recovery_codes.remaining("alice") == 10
    assert svc.recovery_codes.redeem(uid(svc), codes[3], source_ip="192.0.2.7")
    assert not svc.recovery_codes.redeem(uid(svc), codes[3], source_ip="192.0.2.7")
    assert svc.recovery_codes.remaining("alice") == 9

    records = [r for r in audit_records(svc) if r.action.startswith("identity:mfa:")]
    assert [(r.action, r.outcome, r.reason, r.source) for r in records] == [
        (Action.RECOVERY_CODES_GENERATED, Outcome.SUCCESS, "", ""),
        (Action.MFA_VERIFIED, Outcome.SUCCESS, "", "192.0.2.7"),
        (Action.MFA_FAILED, Outcome.FAILURE, "bad-recovery-code", "192.0.2.7"),
    ]
    assert '"factor":"recovery-code"' in records[1].details.replace(" ", "")
    assert not any(code in r.details for r in audit_records(svc) for code in codes)


def test_a_code_typed_differently_still_counts_once(svc: Services) -> None:
    code = svc.recovery_codes.generate("alice", actor="user:alice")[0]

    assert svc.recovery_codes.redeem(uid(svc), " " + code.upper().replace("-", " ") + " ")
    assert not svc.recovery_codes.redeem(uid(svc), code)


def test_codes_belong_to_one_user(svc: Services) -> None:
    code = svc.recovery_codes.generate("alice", actor="user:alice")[0]
    svc.recovery_codes.generate("bob", actor="user:bob")

    assert not svc.recovery_codes.redeem(uid(svc, "bob"), code)
    assert svc.recovery_codes.redeem(uid(svc, "alice"), code)


def test_a_new_set_retires_every_earlier_code(svc: Services) -> None:
    old = svc.recovery_codes.generate("alice", actor="user:alice")
    mark = last_change_id(svc)

    new = svc.recovery_codes.generate("alice", actor="cli:root")

    assert not set(old) & set(new)
    assert not any(svc.recovery_codes.redeem(uid(svc), code) for code in old)
    assert svc.recovery_codes.remaining("alice") == 10
    assert changes(svc, after=mark) == [ChangeEvent(Topic.USER, str(uid(svc)))]


def test_only_hashes_are_stored(svc: Services) -> None:
    codes = svc.recovery_codes.generate("alice", actor="user:alice")

    with svc.db.engine.connect() as conn:
        stored = " ".join(str(tuple(r)) for r in conn.execute(select(recovery_codes)))

    for code in codes:
        for form in (code, code.upper(), code.replace("-", ""), code.upper().replace("-", "")):
            assert form not in stored


def test_unknown_people_and_garbage_are_refused_quietly(svc: Services) -> None:
    with pytest.raises(UnknownUser):
        svc.recovery_codes.generate("nobody", actor="cli:root")
    with pytest.raises(UnknownUser):
        svc.recovery_codes.remaining("nobody")
    assert not svc.recovery_codes.redeem(uid(svc), "")
    assert not svc.recovery_codes.redeem(uid(svc), "x" * 10_000)
    assert not svc.recovery_codes.redeem(10**9, "aaaa-aaaa-aaaa")
    assert svc.recovery_codes.remaining("alice") == 0


def test_service_accounts_get_no_codes(svc: Services) -> None:
    with svc.uow.write() as uow:
        uow.users.insert(
            name="backup-bot",
            display_name="",
            email="",
            now=svc.clock.now(),
            kind=UserKind.SERVICE,
        )

    with pytest.raises(InvalidInput, match="service account"):
        svc.recovery_codes.generate("backup-bot", actor="cli:root")


def test_two_replicas_redeeming_one_code_at_once_accept_it_once(
    svc: Services, open_peer: Callable[[], Services]
) -> None:
    code = svc.recovery_codes.generate("alice", actor="user:alice")[0]
    alice_id = uid(svc)
    replicas = [open_peer(), open_peer()]
    start = threading.Barrier(6)
    results: list[bool] = []

    def attempt(replica: Services) -> None:
        start.wait()
        results.append(replica.recovery_codes.redeem(alice_id, code))

    threads = [threading.Thread(target=attempt, args=(replicas[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(results) == [False] * 5 + [True]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(order=st.permutations(range(10)), data=st.data())
def test_any_code_accepted_once_is_refused_ever_after(
    svc: Services, order: list[int], data: st.DataObject
) -> None:
    codes = svc.recovery_codes.generate("alice", actor="user:alice")
    alice_id = uid(svc)
    spent: list[str] = []
    for i in order[: data.draw(st.integers(min_value=1, max_value=10))]:
        assert svc.recovery_codes.redeem(alice_id, codes[i])
        spent.append(codes[i])
        retry = data.draw(st.sampled_from(spent))
        assert not svc.recovery_codes.redeem(alice_id, retry)
    assert svc.recovery_codes.remaining("alice") == 10 - len(spent)
