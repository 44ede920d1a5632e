"""Sessions across the second factor: pending, completion, step-up and rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.identity import InvalidCredentials, IssuedSession, SessionKind

from ._support import PASSWORD, audit_actions


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    return any_services


def login(svc: Services) -> IssuedSession:
    return svc.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="pytest")


def finish(svc: Services, pending: IssuedSession, method: str = "otp") -> IssuedSession:
    return svc.auth.complete_second_factor(
        pending.record, method=method, source_ip="192.0.2.7", user_agent="pytest"
    )


def test_without_a_second_factor_the_password_opens_a_full_session(svc: Services) -> None:
    issued = login(svc)
    assert issued.record.kind is SessionKind.PORTAL
    assert issued.record.auth_methods == ("pwd",)
    assert svc.auth.second_factors(issued.user.id) == frozenset()


def test_with_totp_the_password_opens_only_a_pending_session(svc: Services) -> None:
    svc.totp.enroll_confirmed("alice", actor="admin:root")
    pending = login(svc)

    assert pending.record.kind is SessionKind.PENDING
    assert svc.sessions.portal_session(pending.token) is None  # grants nothing
    assert svc.auth.pending_session(pending.token) is not None
    assert svc.sessions.list_sessions(username="alice") == []
    assert audit_actions(svc)[-1] == Action.LOGIN_SECOND_FACTOR_REQUIRED

    full = finish(svc, pending)
    assert full.token != pending.token
    assert full.record.kind is SessionKind.PORTAL
    assert set(full.record.auth_methods) == {"pwd", "otp", "mfa"}
    assert svc.sessions.portal_session(full.token) is not None
    assert svc.auth.pending_session(pending.token) is None  # used up
    with pytest.raises(InvalidCredentials):
        finish(svc, pending)  # a pending session completes once
    assert audit_actions(svc)[-1] == Action.LOGIN_SUCCEEDED
    assert svc.directory.get_user("alice").last_login_at is not None


def test_a_passkey_counts_as_a_hardware_key_and_as_mfa(svc: Services) -> None:
    svc.totp.enroll_confirmed("alice", actor="admin:root")
    full = finish(svc, login(svc), method="webauthn")
    assert set(full.record.auth_methods) == {"pwd", "webauthn", "hwk", "mfa"}


def test_a_pending_session_expires_after_five_minutes(svc: Services, clock: FixedClock) -> None:
    svc.totp.enroll_confirmed("alice", actor="admin:root")
    pending = login(svc)
    clock.advance(timedelta(minutes=5))
    assert svc.auth.pending_session(pending.token) is None
    with pytest.raises(InvalidCredentials):
        finish(svc, pending)


def test_step_up_rotates_the_session_and_ends_its_app_sessions(
    svc: Services, clock: FixedClock
) -> None:
    svc.totp.enroll_confirmed("alice", actor="admin:root")
    full = finish(svc, login(svc))
    found = svc.sessions.portal_session(full.token)
    assert found is not None
    code = svc.handoff.issue(found[0], app_name="whoami", target="/", state="st")
    _, app_record, _ = svc.handoff.redeem(
        code, app_name="whoami", state="st", source_ip="", user_agent=""
    )

    clock.advance(timedelta(minutes=20))
    stepped = svc.auth.step_up(full.record, method="otp", source_ip="", user_agent="")

    assert stepped.token != full.token
    assert stepped.record.auth_time == clock.now()
    assert svc.sessions.portal_session(full.token) is None
    old_app = svc.sessions.session_by_hash(app_record.id_hash)
    assert old_app is not None and old_app.revoked_at is not None
    assert svc.sessions.portal_session(stepped.token) is not None
    assert audit_actions(svc)[-1] == Action.STEP_UP_SUCCEEDED


def test_members_of_an_mfa_group_must_enrol_before_reaching_apps(svc: Services) -> None:
    svc.directory.add_group("finance", actor="admin:root")
    svc.directory.set_membership("finance", "alice", True, actor="admin:root")
    alice = svc.directory.get_user("alice")
    assert not svc.auth.must_enrol_mfa(alice)

    svc.directory.set_group_mfa_required("finance", True, actor="admin:root")
    assert svc.auth.must_enrol_mfa(svc.directory.get_user("alice"))

    svc.totp.enroll_confirmed("alice", actor="admin:root")
    assert not svc.auth.must_enrol_mfa(svc.directory.get_user("alice"))
