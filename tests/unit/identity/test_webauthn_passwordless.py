"""Passkey-first sign-in against real signatures from a software authenticator (SQLite).

The browser names no user: the passkey does. A refusal leaves the counter and the
passkey's last use alone, spends the challenge, and records one audit entry saying why.
"""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import timedelta
from typing import Any

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome
from nevertrust.clock import FixedClock
from nevertrust.identity import (
    InvalidCredentials,
    PasskeyAuthenticationFailed,
    PasskeyChallengeExpired,
    PasskeyCloned,
    UserRecord,
)
from nevertrust.identity.models import WebAuthnCredentialRecord
from tests.soft_authenticator import SoftAuthenticator, b64url
from tests.unit.identity._passkeys import audit, register, user


def stored(svc: Services, who: UserRecord) -> WebAuthnCredentialRecord:
    [found] = svc.webauthn.list(who)
    return found


def without_user_verification(
    key: SoftAuthenticator, options_json: str, origin: str
) -> dict[str, Any]:
    """What an authenticator answers when it only checked presence (a touch, no PIN)."""
    options = json.loads(options_json)
    [k] = key.keys.values()
    k.sign_count += 1
    auth_data = (
        hashlib.sha256(k.rp_id.encode()).digest()
        + bytes([0x01])  # UP only
        + struct.pack(">I", k.sign_count)
    )
    client_data = json.dumps(
        {"type": "webauthn.get", "challenge": options["challenge"], "origin": origin}
    ).encode()
    signature = k.sign(auth_data + hashlib.sha256(client_data).digest())
    return {
        "id": b64url(k.credential_id),
        "rawId": b64url(k.credential_id),
        "type": "public-key",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
            "userHandle": b64url(k.user_handle),
        },
    }


def test_options_name_no_passkey_and_require_user_verification(svc: Services) -> None:
    options, handle = svc.webauthn.begin_passwordless()

    parsed = json.loads(options)
    assert parsed["allowCredentials"] == []
    assert parsed["userVerification"] == "required"
    registration = json.loads(svc.webauthn.begin_registration(user(svc, "alice"))[0])
    assert parsed["rpId"] == registration["rp"]["id"]
    assert handle and handle not in options


def test_the_passkey_says_who_signs_in_and_its_counter_is_recorded(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = user(svc, "alice")
    register(svc, user(svc, "bob"), SoftAuthenticator(origin=svc.settings.portal_url))
    registered = register(svc, alice, key)
    options, handle = svc.webauthn.begin_passwordless()

    result = svc.webauthn.finish_passwordless(
        handle, key.get(options, any_key=True), source_ip="192.0.2.7"
    )

    assert result.user.name == "alice"
    assert result.passkey.id == registered.id
    assert stored(svc, alice).sign_count == 1
    assert stored(svc, alice).last_used_at is not None
    record = audit(svc)[-1]
    assert (record.action, record.outcome, record.actor, record.source) == (
        Action.MFA_VERIFIED,
        Outcome.SUCCESS,
        "user:alice",
        "192.0.2.7",
    )
    assert json.loads(record.details)["ceremony"] == "passwordless"


def test_a_passkey_without_user_verification_is_refused_and_changes_nothing(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = user(svc, "alice")
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_passwordless()
    answer = without_user_verification(key, options, svc.settings.portal_url)

    with pytest.raises(PasskeyAuthenticationFailed, match="did not verify you"):
        svc.webauthn.finish_passwordless(handle, answer)

    assert stored(svc, alice).sign_count == 0
    assert stored(svc, alice).last_used_at is None
    record = audit(svc)[-1]
    assert (record.action, record.outcome, record.actor) == (
        Action.MFA_FAILED,
        Outcome.FAILURE,
        "user:alice",
    )
    assert record.reason == "passkey-authentication-failed"
    # The challenge is spent: the same answer cannot be retried.
    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True))


def test_an_unknown_passkey_is_refused_and_recorded(svc: Services) -> None:
    stranger = SoftAuthenticator(origin=svc.settings.portal_url)
    bob = user(svc, "bob")
    register(svc, bob, stranger)
    with svc.uow.write() as uow:
        uow.webauthn.delete_all(bob.id)
    options, handle = svc.webauthn.begin_passwordless()

    with pytest.raises(PasskeyAuthenticationFailed, match="not registered here"):
        svc.webauthn.finish_passwordless(handle, stranger.get(options, any_key=True))

    record = audit(svc)[-1]
    assert (record.action, record.outcome, record.actor) == (
        Action.MFA_FAILED,
        Outcome.FAILURE,
        "passkey:unknown",
    )


def test_an_answer_naming_another_user_handle_is_refused(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = user(svc, "alice")
    register(svc, alice, key)
    bob = user(svc, "bob")
    [k] = key.keys.values()
    k.user_handle = str(bob.id).encode()
    options, handle = svc.webauthn.begin_passwordless()

    with pytest.raises(PasskeyAuthenticationFailed, match="another account"):
        svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True))
    assert stored(svc, alice).sign_count == 0


def test_disabled_users_and_service_accounts_cannot_sign_in_with_a_passkey(
    svc: Services, key: SoftAuthenticator
) -> None:
    alice = user(svc, "alice")
    register(svc, alice, key)
    svc.directory.set_enabled("alice", False, actor="admin:root")
    options, handle = svc.webauthn.begin_passwordless()

    with pytest.raises(PasskeyAuthenticationFailed, match="cannot sign in"):
        svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True))
    assert stored(svc, alice).sign_count == 0

    robot_key = SoftAuthenticator(origin=svc.settings.portal_url)
    svc.service_accounts.create("robot", owner="bob", actor="admin:root")
    register(svc, user(svc, "robot"), robot_key)
    options, handle = svc.webauthn.begin_passwordless()
    with pytest.raises(PasskeyAuthenticationFailed, match="cannot sign in"):
        svc.webauthn.finish_passwordless(handle, robot_key.get(options, any_key=True))


def test_a_challenge_expires_and_serves_one_ceremony_only(
    svc: Services, key: SoftAuthenticator, clock: FixedClock
) -> None:
    alice = user(svc, "alice")
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_passwordless()
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(PasskeyChallengeExpired, match="start again"):
        svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True))

    # A second-factor challenge (bound to alice) does not serve a passkey-first sign-in.
    options, handle = svc.webauthn.begin_authentication(alice.id)
    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_passwordless(handle, key.get(options))
    assert stored(svc, alice).sign_count == 0


def test_a_copied_passkey_whose_counter_went_back_is_refused(
    svc: Services, key: SoftAuthenticator
) -> None:
    register(svc, user(svc, "alice"), key)
    options, handle = svc.webauthn.begin_passwordless()
    svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True, sign_count=5))
    options, handle = svc.webauthn.begin_passwordless()

    with pytest.raises(PasskeyCloned):
        svc.webauthn.finish_passwordless(handle, key.get(options, any_key=True, sign_count=3))


def test_login_with_passkey_opens_a_full_session_that_records_the_passkey(
    svc: Services,
) -> None:
    alice = user(svc, "alice")
    issued = svc.auth.login_with_passkey(alice, source_ip="192.0.2.7", user_agent="test")

    found = svc.sessions.portal_session(issued.token)
    assert found is not None
    assert found[0].auth_methods == ("webauthn", "hwk", "mfa")
    assert user(svc, "alice").last_login_at is not None
    record = audit(svc)[-1]
    assert (record.action, record.actor) == (Action.LOGIN_SUCCEEDED, "user:alice")
    assert json.loads(record.details)["methods"] == ["webauthn", "hwk", "mfa"]


def test_login_with_passkey_refuses_a_disabled_user_and_records_it(svc: Services) -> None:
    alice = user(svc, "alice")
    svc.directory.set_enabled("alice", False, actor="admin:root")

    with pytest.raises(InvalidCredentials):
        svc.auth.login_with_passkey(alice, source_ip="192.0.2.7", user_agent="test")

    record = audit(svc)[-1]
    assert (record.action, record.reason) == (Action.LOGIN_FAILED, "user-disabled")
    assert svc.sessions.list_sessions(username="alice") == []
