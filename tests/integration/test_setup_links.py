"""Password setup links: one-time, expiring, replaced by a newer link."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.clock import FixedClock
from nevertrust.crypto import hash_token
from nevertrust.identity import WeakPassword
from nevertrust.store.tables import setup_tokens

from ._support import PASSWORD, audit_records


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root")
    return any_services


def can_log_in(svc: Services, password: str = PASSWORD) -> bool:
    try:
        svc.auth.login("alice", password, source_ip="", user_agent="")
    except Exception:  # noqa: BLE001 - any failure means "no"
        return False
    return True


def test_setup_link_sets_the_password_once(svc: Services) -> None:
    token = svc.directory.issue_setup_link_token("alice", actor="admin:root")
    user = svc.directory.setup_link_user(token)
    assert user is not None and user.name == "alice"

    done = svc.directory.complete_setup(token, PASSWORD)

    assert done is not None and done.password_hash is not None
    assert can_log_in(svc)
    assert svc.directory.setup_link_user(token) is None
    assert svc.directory.complete_setup(token, "another good password") is None
    assert can_log_in(svc)  # the second attempt changed nothing
    not_logins = [r for r in audit_records(svc) if r.action != Action.LOGIN_SUCCEEDED]
    issued, password_set = not_logins[-2:]
    assert issued.action == Action.SETUP_LINK_ISSUED
    assert (password_set.action, password_set.actor) == (Action.PASSWORD_SET, "user:alice")
    assert json.loads(password_set.details) == {"via": "setup-link"}


def test_setup_token_is_stored_only_as_a_hash(svc: Services) -> None:
    token = svc.directory.issue_setup_link_token("alice", actor="admin:root")

    with svc.db.engine.connect() as conn:
        stored = conn.execute(select(setup_tokens.c.token_hash)).scalars().all()

    assert stored == [hash_token(token)]


def test_setup_link_expires(svc: Services, clock: FixedClock) -> None:
    token = svc.directory.issue_setup_link_token("alice", actor="admin:root")

    clock.advance(timedelta(hours=svc.settings.identity.setup_link_ttl_hours))

    assert svc.directory.setup_link_user(token) is None
    assert svc.directory.complete_setup(token, PASSWORD) is None
    assert not can_log_in(svc)


def test_new_setup_link_invalidates_the_old_one(svc: Services) -> None:
    old = svc.directory.issue_setup_link_token("alice", actor="admin:root")
    new = svc.directory.issue_setup_link_token("alice", actor="admin:root")

    assert svc.directory.complete_setup(old, PASSWORD) is None
    assert not can_log_in(svc)
    assert svc.directory.complete_setup(new, PASSWORD) is not None
    assert can_log_in(svc)


@pytest.mark.parametrize("weak", ["short", "alice", "x" * 1025])
def test_weak_password_is_rejected_without_using_up_the_link(svc: Services, weak: str) -> None:
    token = svc.directory.issue_setup_link_token("alice", actor="admin:root")

    with pytest.raises(WeakPassword) as caught:
        svc.directory.complete_setup(token, weak)

    assert caught.value.code == "weak-password"
    assert svc.directory.setup_link_user(token) is not None
    assert svc.directory.complete_setup(token, PASSWORD) is not None
    assert can_log_in(svc)
