"""Passkeys on both backends: what is stored, and ceremonies across processes and races."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.crypto import hash_token
from nevertrust.identity import PasskeyChallengeExpired, PasskeyRegistrationFailed, SessionKind
from nevertrust.store.tables import auth_challenges, webauthn_credentials
from tests.soft_authenticator import SoftAuthenticator, b64url

from ._support import PASSWORD, audit_actions, db_state


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    return any_services


@pytest.fixture
def key(svc: Services) -> SoftAuthenticator:
    return SoftAuthenticator(origin=svc.settings.portal_url)


def test_a_passkey_is_stored_with_its_public_key_and_the_handle_only_as_a_hash(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = svc.directory.get_user("alice")
    options, handle = svc.webauthn.begin_registration(alice)

    with svc.db.engine.connect() as conn:
        [challenge] = conn.execute(select(auth_challenges)).all()
    assert challenge.id_hash == hash_token(handle)
    assert handle not in repr(tuple(challenge))
    assert challenge.purpose == "webauthn:register"

    stored = svc.webauthn.finish_registration(alice, handle, key.create(options), "laptop")

    with svc.db.engine.connect() as conn:
        assert conn.execute(select(auth_challenges)).all() == []  # spent
        [row] = conn.execute(select(webauthn_credentials)).all()
    assert (row.user_id, row.credential_id, row.name, row.transports) == (
        alice.id,
        b64url(next(iter(key.keys))),
        "laptop",
        "internal",
    )
    assert bytes(row.public_key) == stored.public_key
    assert audit_actions(svc)[-1] == Action.MFA_ENROLLED
    # With a passkey, a password alone no longer signs alice in.
    issued = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.1", user_agent="pytest")
    assert issued.record.kind is SessionKind.PENDING


def test_a_ceremony_begun_on_one_replica_finishes_on_another(
    svc: Services, key: SoftAuthenticator, peer: Services
) -> None:
    alice = svc.directory.get_user("alice")
    options, handle = svc.webauthn.begin_registration(alice)
    peer.webauthn.finish_registration(alice, handle, key.create(options), "laptop")

    options, handle = peer.webauthn.begin_authentication(alice.id)
    used = svc.webauthn.finish_authentication(handle, key.get(options), user_id=alice.id)

    assert used.sign_count == 1
    assert [p.sign_count for p in peer.webauthn.list(alice)] == [1]


def test_two_replicas_racing_with_one_assertion_let_exactly_one_in(
    svc: Services, key: SoftAuthenticator, open_peer: Callable[[], Services]
) -> None:
    alice = svc.directory.get_user("alice")
    options, handle = svc.webauthn.begin_registration(alice)
    svc.webauthn.finish_registration(alice, handle, key.create(options), "laptop")
    options, handle = svc.webauthn.begin_authentication(alice.id)
    assertion = key.get(options)
    replicas = [open_peer() for _ in range(4)]

    def attempt(replica: Services) -> str:
        try:
            replica.webauthn.finish_authentication(handle, assertion, user_id=alice.id)
        except PasskeyChallengeExpired:
            return "refused"
        return "accepted"

    with ThreadPoolExecutor(len(replicas)) as pool:
        outcomes = sorted(pool.map(attempt, replicas))

    assert outcomes == ["accepted", "refused", "refused", "refused"]
    assert audit_actions(svc).count(Action.MFA_VERIFIED) == 1
    assert audit_actions(svc).count(Action.MFA_FAILED) == 3


def test_a_refused_registration_writes_only_the_spent_challenge_and_its_audit_record(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = svc.directory.get_user("alice")
    options, handle = svc.webauthn.begin_registration(alice)
    before = db_state(svc)

    with pytest.raises(PasskeyRegistrationFailed, match="origin"):
        svc.webauthn.finish_registration(
            alice, handle, key.create(options, origin="http://phish.example"), "x"
        )

    after = db_state(svc)
    changed = {t for t in before if before[t] != after[t]}
    assert changed == {"auth_challenges", "audit_log", "audit_head"}
    assert after["auth_challenges"] == []
    assert audit_actions(svc)[-1] == Action.MFA_FAILED
