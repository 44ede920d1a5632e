"""Signing in and out: sessions, failures, revocation and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.crypto import hash_token
from nevertrust.identity import InvalidCredentials, IssuedSession, SessionKind, UnknownUser
from nevertrust.store.tables import sessions

from ._support import PASSWORD, audit_records, changes, last_change_id


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    return any_services


def login(svc: Services, username: str = "alice", password: str = PASSWORD) -> IssuedSession:
    return svc.auth.login(username, password, source_ip="192.0.2.7", user_agent="pytest")


def open_app_session(svc: Services, portal_token: str, app: str = "whoami") -> tuple[str, str]:
    """A portal login handed off to an app host: (app cookie token, app session hash)."""
    found = svc.sessions.portal_session(portal_token)
    assert found is not None
    code = svc.handoff.issue(found[0], app_name=app, target="/", state="st")
    token, record, _ = svc.handoff.redeem(
        code, app_name=app, state="st", source_ip="", user_agent=""
    )
    return token, record.id_hash


def test_login_opens_a_new_session_every_time(svc: Services) -> None:
    first = login(svc)
    second = login(svc)

    # No session fixation: every login mints a fresh id, never reusing one.
    assert first.token != second.token
    assert first.record.id_hash != second.record.id_hash
    assert first.record.id_hash == hash_token(first.token)
    assert first.record.kind is SessionKind.PORTAL
    assert first.user.name == "alice"
    assert [s.id_hash for s in svc.sessions.list_sessions(username="alice")] == [
        first.record.id_hash,
        second.record.id_hash,
    ]
    records = audit_records(svc)[-2:]
    assert [(r.action, r.outcome, r.source) for r in records] == [
        (Action.LOGIN_SUCCEEDED, Outcome.SUCCESS, "192.0.2.7")
    ] * 2


def test_session_tokens_are_stored_only_as_hashes(svc: Services) -> None:
    issued = login(svc)

    with svc.db.engine.connect() as conn:
        stored = conn.execute(select(sessions.c.id_hash)).scalars().all()

    assert stored == [hash_token(issued.token)]
    assert issued.token not in stored


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("alice", "wrong password entirely", "bad-password"),
        ("mallory", PASSWORD, "unknown-user"),
    ],
)
def test_wrong_password_and_unknown_user_fail_alike_and_are_audited(
    svc: Services, username: str, password: str, reason: str
) -> None:
    with pytest.raises(InvalidCredentials) as caught:
        login(svc, username, password)

    assert caught.value.code == "invalid-credentials"
    assert str(caught.value) == "wrong user name or password"
    record = audit_records(svc)[-1]
    assert (record.action, record.outcome, record.actor, record.reason) == (
        Action.LOGIN_FAILED,
        Outcome.FAILURE,
        f"user:{username}",
        reason,
    )
    assert svc.sessions.list_sessions() == []


def test_disabled_user_cannot_log_in_even_with_the_right_password(svc: Services) -> None:
    svc.directory.set_enabled("alice", False, actor="admin:root")

    with pytest.raises(InvalidCredentials):
        login(svc)

    assert audit_records(svc)[-1].reason == "user-disabled"
    assert svc.sessions.list_sessions() == []


def test_portal_session_resolves_only_live_portal_tokens(svc: Services) -> None:
    issued = login(svc)
    app_token, _ = open_app_session(svc, issued.token)

    found = svc.sessions.portal_session(issued.token)

    assert found is not None
    record, user = found
    assert (record.id_hash, user.name) == (issued.record.id_hash, "alice")
    assert svc.sessions.portal_session("not-a-token") is None
    assert svc.sessions.portal_session("") is None
    assert svc.sessions.portal_session("x" * 500) is None
    # An app host's cookie is not a portal login.
    assert svc.sessions.portal_session(app_token) is None


def test_portal_session_of_a_disabled_user_is_refused(svc: Services) -> None:
    issued = login(svc)
    with svc.uow.write() as uow:  # disable without the service, so the session stays open
        user = uow.users.get_by_name("alice")
        assert user is not None
        uow.users.set_enabled(user.id, False, now=svc.clock.now())

    assert svc.sessions.portal_session(issued.token) is None


def test_logout_revokes_the_portal_session_and_its_app_sessions(svc: Services) -> None:
    issued = login(svc)
    other = login(svc)
    _, app_hash = open_app_session(svc, issued.token)
    start = last_change_id(svc)

    svc.sessions.logout(issued.record, actor="user:alice", source_ip="192.0.2.7")

    assert svc.sessions.portal_session(issued.token) is None
    app_session = svc.sessions.session_by_hash(app_hash)
    assert app_session is not None and app_session.revoked_at == svc.clock.now()
    # Only this login ends; the user's other sessions stay.
    assert svc.sessions.portal_session(other.token) is not None
    assert audit_records(svc)[-1].action == Action.LOGOUT
    assert changes(svc, after=start) == [ChangeEvent(Topic.SESSION, issued.record.id_hash)]


def test_revoke_user_sessions_ends_every_session_of_the_user(svc: Services) -> None:
    svc.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    first, second = login(svc), login(svc)
    _, app_hash = open_app_session(svc, first.token)
    bobs = login(svc, "bob")
    start = last_change_id(svc)

    count = svc.sessions.revoke_user_sessions("alice", actor="admin:root")

    assert count == 3  # two portal sessions and one app session
    assert svc.sessions.portal_session(first.token) is None
    assert svc.sessions.portal_session(second.token) is None
    app_session = svc.sessions.session_by_hash(app_hash)
    assert app_session is not None and app_session.revoked_at is not None
    assert svc.sessions.portal_session(bobs.token) is not None
    record = audit_records(svc)[-1]
    assert (record.action, record.target) == (Action.SESSION_REVOKED, "user:alice")
    alice = svc.directory.get_user("alice")
    assert changes(svc, after=start) == [ChangeEvent(Topic.USER_SESSIONS, str(alice.id))]
    with pytest.raises(UnknownUser):
        svc.sessions.revoke_user_sessions("nobody", actor="admin:root")


def test_session_expires_after_its_lifetime_even_when_in_use(
    svc: Services, clock: FixedClock
) -> None:
    issued = login(svc)
    lifetime = timedelta(minutes=svc.settings.identity.session_lifetime_minutes)
    step = timedelta(minutes=svc.settings.identity.idle_timeout_minutes) / 2
    used = timedelta(0)
    # Used every half idle period, it lives exactly as long as its absolute lifetime.
    while used + step < lifetime:
        clock.advance(step)
        used += step
        assert svc.sessions.portal_session(issued.token) is not None

    clock.advance(lifetime - used - timedelta(seconds=1))
    assert svc.sessions.portal_session(issued.token) is not None

    clock.advance(timedelta(seconds=1))
    assert svc.sessions.portal_session(issued.token) is None
    assert svc.sessions.list_sessions(username="alice") == []


def test_session_ends_when_idle_longer_than_the_idle_timeout(
    svc: Services, clock: FixedClock
) -> None:
    issued = login(svc)
    idle = timedelta(minutes=svc.settings.identity.idle_timeout_minutes)

    clock.advance(idle - timedelta(seconds=1))
    assert svc.sessions.portal_session(issued.token) is not None  # used: the idle clock restarts
    clock.advance(idle - timedelta(seconds=1))
    assert svc.sessions.portal_session(issued.token) is not None

    clock.advance(idle)
    assert svc.sessions.portal_session(issued.token) is None
    # An app session handed out from it cannot be redeemed or used either.
    record = svc.sessions.session_by_hash(issued.record.id_hash)
    assert record is not None and not svc.sessions.alive(record, clock.now())


def test_sessions_that_ended_long_ago_are_purged_and_live_ones_kept(
    svc: Services, clock: FixedClock
) -> None:
    revoked = login(svc)
    svc.sessions.logout(revoked.record, actor="user:alice")
    expired = login(svc)
    clock.advance(timedelta(days=20))
    live = login(svc)
    assert svc.sessions.purge_ended() == 0  # nothing ended 30 days ago yet

    clock.advance(timedelta(days=11))
    assert svc.sessions.portal_session(live.token) is None  # idle by now, but not 30 days ended
    assert svc.sessions.purge_ended() == 2
    assert svc.sessions.session_by_hash(revoked.record.id_hash) is None
    assert svc.sessions.session_by_hash(expired.record.id_hash) is None
    assert svc.sessions.session_by_hash(live.record.id_hash) is not None
