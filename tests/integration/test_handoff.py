"""The one-time code that hands a portal login to an app host."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.identity import InvalidHandoff, SessionKind, SessionRecord

from ._support import PASSWORD, audit_records

STATE = "browser-state-cookie"


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    return any_services


@pytest.fixture
def portal(svc: Services) -> SessionRecord:
    return svc.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua").record


def issue(svc: Services, portal: SessionRecord, app: str = "whoami") -> str:
    return svc.handoff.issue(portal, app_name=app, target="/dashboard?x=1", state=STATE)


def redeem(
    svc: Services, code: str, *, app: str = "whoami", state: str = STATE
) -> tuple[str, SessionRecord, str]:
    return svc.handoff.redeem(
        code, app_name=app, state=state, source_ip="192.0.2.7", user_agent="ua"
    )


def test_code_is_exchanged_once_for_an_app_session(svc: Services, portal: SessionRecord) -> None:
    code = issue(svc, portal)

    token, record, target = redeem(svc, code)

    assert target == "/dashboard?x=1"
    assert (record.kind, record.app_name, record.parent_hash) == (
        SessionKind.APP,
        "whoami",
        portal.id_hash,
    )
    assert record.expires_at == portal.expires_at
    stored = svc.sessions.session_by_hash(record.id_hash)
    assert stored is not None and stored.active(svc.clock.now())
    assert token != code
    assert audit_records(svc)[-1].action == Action.APP_SESSION_ISSUED
    with pytest.raises(InvalidHandoff):
        redeem(svc, code)


def test_code_for_another_app_is_refused(svc: Services, portal: SessionRecord) -> None:
    code = issue(svc, portal, app="whoami")

    with pytest.raises(InvalidHandoff):
        redeem(svc, code, app="grafana")


def test_wrong_state_fails_without_burning_the_code(svc: Services, portal: SessionRecord) -> None:
    code = issue(svc, portal)

    with pytest.raises(InvalidHandoff):
        redeem(svc, code, state="someone-elses-state")

    # The code was presented by the wrong browser: the right one can still finish.
    _, record, _ = redeem(svc, code)
    assert record.parent_hash == portal.id_hash


def test_expired_code_is_refused(svc: Services, portal: SessionRecord, clock: FixedClock) -> None:
    code = issue(svc, portal)

    clock.advance(timedelta(seconds=svc.settings.identity.handoff_code_ttl_seconds))

    with pytest.raises(InvalidHandoff):
        redeem(svc, code)


def test_code_of_a_revoked_portal_session_is_refused(svc: Services, portal: SessionRecord) -> None:
    code = issue(svc, portal)
    svc.sessions.logout(portal, actor="user:alice")

    with pytest.raises(InvalidHandoff):
        redeem(svc, code)


def test_unknown_or_empty_code_is_refused(svc: Services, portal: SessionRecord) -> None:
    issue(svc, portal)

    for code in ("", "made-up-code"):
        with pytest.raises(InvalidHandoff):
            redeem(svc, code)


def test_concurrent_redeems_of_one_code_let_exactly_one_through(
    svc: Services, portal: SessionRecord
) -> None:
    code = issue(svc, portal)
    racers = 8
    barrier = Barrier(racers)

    def attempt(_: int) -> bool:
        barrier.wait()
        try:
            redeem(svc, code)
        except InvalidHandoff:
            return False
        return True

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(attempt, range(racers)))

    assert outcomes.count(True) == 1
