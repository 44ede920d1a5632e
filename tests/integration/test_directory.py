"""Users and groups: every change is audited and announced on the change log."""

from __future__ import annotations

import json

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.errors import AlreadyExists, InvalidInput
from nevertrust.identity import InvalidCredentials, UnknownGroup, UnknownUser, WeakPassword

from ._support import PASSWORD, audit_actions, audit_records, changes, db_state, last_change_id


def test_add_user_stores_the_user_and_writes_audit_and_change_rows(any_services: Services) -> None:
    svc = any_services

    user = svc.directory.add_user(
        "alice", actor="admin:root", password=PASSWORD, display_name="Alice", email="a@x.test"
    )

    assert (user.name, user.display_name, user.email, user.enabled) == (
        "alice",
        "Alice",
        "a@x.test",
        True,
    )
    assert user.password_hash is not None and PASSWORD not in user.password_hash
    assert svc.directory.get_user("alice") == user
    [record] = audit_records(svc)
    assert (record.action, record.actor, record.target) == (
        Action.USER_CREATED,
        "admin:root",
        "user:alice",
    )
    assert changes(svc) == [ChangeEvent(Topic.USER, str(user.id))]


def test_duplicate_user_raises_already_exists_and_writes_nothing(any_services: Services) -> None:
    svc = any_services
    svc.directory.add_user("alice", actor="admin:root")
    before = db_state(svc)

    with pytest.raises(AlreadyExists) as caught:
        svc.directory.add_user("alice", actor="admin:root")

    assert caught.value.code == "already-exists"
    assert db_state(svc) == before


@pytest.mark.parametrize("name", ["Alice", "-alice", "alice smith", "", "a" * 65, "bob/x"])
def test_invalid_user_name_raises_invalid_input(any_services: Services, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        any_services.directory.add_user(name, actor="admin:root")

    assert caught.value.code == "invalid-input"
    assert any_services.directory.list_users() == []


def test_weak_initial_password_is_rejected_before_the_user_exists(any_services: Services) -> None:
    with pytest.raises(WeakPassword):
        any_services.directory.add_user("alice", actor="admin:root", password="short")

    assert any_services.directory.list_users() == []


def test_groups_are_created_once_and_listed_with_members(any_services: Services) -> None:
    svc = any_services
    svc.directory.add_user("alice", actor="admin:root")
    start = last_change_id(svc)

    group = svc.directory.add_group("engineering", actor="admin:root", description="Eng")
    with pytest.raises(AlreadyExists):
        svc.directory.add_group("engineering", actor="admin:root")
    with pytest.raises(InvalidInput):
        svc.directory.add_group("Engineering!", actor="admin:root")
    svc.directory.set_membership("engineering", "alice", True, actor="admin:root")

    assert (group.name, group.description, group.members) == ("engineering", "Eng", ())
    [listed] = svc.directory.list_groups()
    assert (listed.name, listed.members) == ("engineering", ("alice",))
    assert svc.directory.get_user("alice").groups == ("engineering",)
    assert audit_actions(svc)[-2:] == [Action.GROUP_CREATED, Action.GROUP_MEMBER_ADDED]
    assert changes(svc, after=start)[0] == ChangeEvent(Topic.GROUP, "engineering")


def test_membership_changes_are_idempotent_and_only_real_changes_are_recorded(
    any_services: Services,
) -> None:
    svc = any_services
    alice = svc.directory.add_user("alice", actor="admin:root")
    svc.directory.add_group("ops", actor="admin:root")
    start = last_change_id(svc)
    audited = len(audit_records(svc))

    results = [
        svc.directory.set_membership("ops", "alice", True, actor="admin:root"),
        svc.directory.set_membership("ops", "alice", True, actor="admin:root"),
        svc.directory.set_membership("ops", "alice", False, actor="admin:root"),
        svc.directory.set_membership("ops", "alice", False, actor="admin:root"),
    ]

    assert results == [True, False, True, False]
    new_records = audit_records(svc)[audited:]
    assert [r.action for r in new_records] == [
        Action.GROUP_MEMBER_ADDED,
        Action.GROUP_MEMBER_REMOVED,
    ]
    assert all(json.loads(r.details) == {"user": "alice"} for r in new_records)
    assert changes(svc, after=start) == [ChangeEvent(Topic.USER, str(alice.id))] * 2
    assert svc.directory.get_user("alice").groups == ()


def test_membership_with_unknown_user_or_group_raises_not_found(any_services: Services) -> None:
    svc = any_services
    svc.directory.add_user("alice", actor="admin:root")
    svc.directory.add_group("ops", actor="admin:root")

    with pytest.raises(UnknownGroup) as no_group:
        svc.directory.set_membership("nope", "alice", True, actor="admin:root")
    with pytest.raises(UnknownUser) as no_user:
        svc.directory.set_membership("ops", "nobody", True, actor="admin:root")

    assert (no_group.value.code, no_user.value.code) == ("unknown-group", "unknown-user")


def test_disabling_a_user_revokes_every_session_and_is_announced(any_services: Services) -> None:
    svc = any_services
    alice = svc.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    first = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="t")
    second = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.2", user_agent="t")
    start = last_change_id(svc)

    disabled = svc.directory.set_enabled("alice", False, actor="admin:root")

    assert disabled.enabled is False
    assert svc.sessions.portal_session(first.token) is None
    assert svc.sessions.portal_session(second.token) is None
    assert svc.sessions.list_sessions(username="alice") == []
    for issued in (first, second):
        stored = svc.sessions.session_by_hash(issued.record.id_hash)
        assert stored is not None and stored.revoked_at is not None
    record = audit_records(svc)[-1]
    assert (record.action, record.target) == (Action.USER_DISABLED, "user:alice")
    assert json.loads(record.details) == {"sessions_revoked": 2}
    assert changes(svc, after=start) == [
        ChangeEvent(Topic.USER, str(alice.id)),
        ChangeEvent(Topic.USER_SESSIONS, str(alice.id)),
    ]


def test_reenabling_a_user_does_not_revive_old_sessions(any_services: Services) -> None:
    svc = any_services
    svc.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    old = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="t")
    svc.directory.set_enabled("alice", False, actor="admin:root")
    with pytest.raises(InvalidCredentials):
        svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="t")

    svc.directory.set_enabled("alice", True, actor="admin:root")

    assert audit_actions(svc)[-1] == Action.USER_ENABLED
    assert svc.sessions.portal_session(old.token) is None
    new = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="t")
    assert svc.sessions.portal_session(new.token) is not None


def test_set_password_is_audited_without_the_password(any_services: Services) -> None:
    svc = any_services
    svc.directory.add_user("alice", actor="admin:root")

    svc.directory.set_password("alice", PASSWORD, actor="admin:root")

    record = audit_records(svc)[-1]
    assert (record.action, record.target) == (Action.PASSWORD_SET, "user:alice")
    assert PASSWORD not in repr(record)
    assert svc.auth.login("alice", PASSWORD, source_ip="", user_agent="").user.name == "alice"
