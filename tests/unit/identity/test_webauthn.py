"""WebAuthnService against real signatures from a software authenticator (SQLite storage).

Every refusal must leave nothing half-written: no passkey stored, the challenge spent,
and one audit record saying why.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome, SealedRecord
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.errors import InvalidInput
from nevertrust.identity import (
    PasskeyAuthenticationFailed,
    PasskeyChallengeExpired,
    PasskeyCloned,
    PasskeyRegistrationFailed,
    UnknownPasskey,
    UserRecord,
)
from nevertrust.identity.models import WebAuthnCredentialRecord
from tests.soft_authenticator import Alg, SoftAuthenticator, b64url, from_b64url
from tests.unit.identity._passkeys import audit, register, user


@pytest.fixture
def alice(svc: Services) -> UserRecord:
    return user(svc, "alice")


def last_audit(svc: Services) -> SealedRecord:
    return audit(svc)[-1]


def changes(svc: Services) -> list[ChangeEvent]:
    with svc.uow.read() as uow:
        return [event for _, event in uow.changes.since(0, limit=10_000)]


# Registration


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_registers_a_passkey_for_each_supported_algorithm(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, alg: Alg
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)
    stored = svc.webauthn.finish_registration(
        alice,
        handle,
        key.create(options, alg=alg),
        "  Work\tlaptop\x00 ",
    )

    assert stored.name == "Work laptop"
    assert stored.credential_id == b64url(next(iter(key.keys)))
    assert stored.transports == ("internal",)
    assert [p.id for p in svc.webauthn.list(alice)] == [stored.id]
    record = last_audit(svc)
    assert (record.action, record.outcome, record.actor) == (
        Action.MFA_ENROLLED,
        Outcome.SUCCESS,
        "user:alice",
    )
    assert json.loads(record.details)["factor"] == "webauthn"
    assert ChangeEvent(Topic.USER, str(alice.id)) in changes(svc)
    assert svc.auth.second_factors(alice.id) >= {"webauthn"}


def test_registration_options_state_our_choices_and_exclude_known_authenticators(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)

    options = json.loads(svc.webauthn.begin_registration(alice)[0])

    assert options["rp"] == {"id": "auth.localhost", "name": "NeverTrust"}
    assert options["user"]["name"] == "alice"
    assert from_b64url(options["user"]["id"]) != b"alice"  # no personal data in the handle
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(next(iter(key.keys)))]
    assert len(from_b64url(options["challenge"])) >= 32
    # The browser refuses to register the same authenticator twice.
    with pytest.raises(AssertionError, match="InvalidStateError"):
        key.create(json.dumps(options))


@pytest.mark.parametrize(
    "credential",
    [
        "this is not JSON",
        "[1, 2, 3]",
        "{}",
        '{"id": "x", "rawId": "x", "type": "public-key", "response": {}}',
    ],
)
def test_garbage_is_refused_and_spends_the_challenge(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, credential: str
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)

    with pytest.raises(PasskeyRegistrationFailed, match="response was refused"):
        svc.webauthn.finish_registration(alice, handle, credential, "x")

    assert svc.webauthn.list(alice) == []
    record = last_audit(svc)
    assert (record.action, record.outcome, record.reason) == (
        Action.MFA_FAILED,
        Outcome.FAILURE,
        "passkey-registration-failed",
    )
    # One attempt per challenge: even the right answer now needs a new ceremony.
    with pytest.raises(PasskeyChallengeExpired, match="expired or was already used"):
        svc.webauthn.finish_registration(alice, handle, key.create(options), "x")


def test_a_tampered_attestation_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)
    credential = key.create(options)
    credential["response"]["attestationObject"] = b64url(b"\xa1\x63fmt\x64none")

    with pytest.raises(PasskeyRegistrationFailed):
        svc.webauthn.finish_registration(alice, handle, credential, "x")
    assert svc.webauthn.list(alice) == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"origin": "http://auth.evil.example:8080"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"ceremony": "webauthn.get"}, "client data type"),
    ],
)
def test_a_response_made_for_another_site_or_ceremony_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, answer: dict[str, str], message: str
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)

    with pytest.raises(PasskeyRegistrationFailed, match=message):
        svc.webauthn.finish_registration(alice, handle, key.create(options, **answer), "x")  # type: ignore[arg-type]
    assert svc.webauthn.list(alice) == []


def test_an_expired_challenge_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, clock: FixedClock
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)
    clock.advance(timedelta(minutes=5, seconds=1))

    with pytest.raises(PasskeyChallengeExpired, match="start again"):
        svc.webauthn.finish_registration(alice, handle, key.create(options), "x")
    assert svc.webauthn.list(alice) == []


def test_a_challenge_is_good_for_one_registration(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)
    credential = key.create(options)
    svc.webauthn.finish_registration(alice, handle, credential, "first")

    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_registration(alice, handle, credential, "again")
    assert [p.name for p in svc.webauthn.list(alice)] == ["first"]


def test_a_challenge_started_for_one_user_cannot_register_for_another(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    bob = user(svc, "bob")
    options, handle = svc.webauthn.begin_registration(alice)

    with pytest.raises(PasskeyChallengeExpired, match="another account"):
        svc.webauthn.finish_registration(bob, handle, key.create(options), "x")

    assert svc.webauthn.list(bob) == [] and svc.webauthn.list(alice) == []
    # A handle that leaked is burned for its owner too.
    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_registration(alice, handle, key.create(options, reuse=True), "x")


def test_an_authenticator_already_registered_is_refused_even_past_the_exclude_list(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_registration(alice)

    with pytest.raises(PasskeyRegistrationFailed, match="already registered"):
        svc.webauthn.finish_registration(alice, handle, key.create(options, reuse=True), "x")
    assert len(svc.webauthn.list(alice)) == 1


def test_a_too_long_name_is_refused_before_the_challenge_is_spent(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    options, handle = svc.webauthn.begin_registration(alice)
    credential = key.create(options)

    with pytest.raises(InvalidInput, match="expected at most 64 characters, got 65"):
        svc.webauthn.finish_registration(alice, handle, credential, "x" * 65)

    stored = svc.webauthn.finish_registration(alice, handle, credential, "")
    assert stored.name == "Passkey"


# Authentication


def authenticate(
    svc: Services, who: UserRecord, key: SoftAuthenticator, **answer: object
) -> WebAuthnCredentialRecord:
    options, handle = svc.webauthn.begin_authentication(who.id)
    return svc.webauthn.finish_authentication(
        handle,
        key.get(options, **answer),  # type: ignore[arg-type]
        user_id=who.id,
    )


def test_a_registered_passkey_signs_in_and_its_counter_and_use_are_recorded(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, clock: FixedClock
) -> None:
    stored = register(svc, alice, key)
    clock.advance(timedelta(minutes=1))

    used = authenticate(svc, alice, key)

    assert (used.id, used.sign_count, used.last_used_at) == (stored.id, 1, clock.now())
    [again] = svc.webauthn.list(alice)
    assert (again.sign_count, again.last_used_at) == (1, clock.now())
    record = last_audit(svc)
    assert (record.action, record.outcome, record.target) == (
        Action.MFA_VERIFIED,
        Outcome.SUCCESS,
        "user:alice",
    )


def test_authentication_options_name_only_this_users_passkeys(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    register(svc, user(svc, "bob"), SoftAuthenticator(origin=svc.settings.portal_url))

    options = json.loads(svc.webauthn.begin_authentication(alice.id)[0])

    assert [c["id"] for c in options["allowCredentials"]] == [b64url(next(iter(key.keys)))]
    assert options["rpId"] == "auth.localhost"
    assert options["userVerification"] == "preferred"


def test_a_user_without_passkeys_cannot_start_a_passkey_sign_in(
    svc: Services, alice: UserRecord
) -> None:
    with pytest.raises(PasskeyAuthenticationFailed, match="no passkey is registered"):
        svc.webauthn.begin_authentication(alice.id)


def test_someone_elses_passkey_does_not_sign_in_as_you(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    bobs_key = SoftAuthenticator(origin=svc.settings.portal_url)
    register(svc, user(svc, "bob"), bobs_key)

    with pytest.raises(PasskeyAuthenticationFailed, match="not registered to your account"):
        authenticate(svc, alice, bobs_key, any_key=True)
    record = last_audit(svc)
    assert (record.action, record.actor, record.reason) == (
        Action.MFA_FAILED,
        "user:alice",
        "passkey-authentication-failed",
    )


def test_an_unknown_credential_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    stranger = SoftAuthenticator(origin=svc.settings.portal_url)
    stranger.create(svc.webauthn.begin_registration(alice)[0])  # never sent to the server

    with pytest.raises(PasskeyAuthenticationFailed, match="not registered"):
        authenticate(svc, alice, stranger, any_key=True)


def test_a_challenge_started_for_another_user_does_not_sign_in(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    bob = user(svc, "bob")
    options, handle = svc.webauthn.begin_authentication(alice.id)

    with pytest.raises(PasskeyChallengeExpired, match="another account"):
        svc.webauthn.finish_authentication(handle, key.get(options), user_id=bob.id)


def test_an_assertion_is_good_once_and_only_until_the_challenge_expires(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, clock: FixedClock
) -> None:
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_authentication(alice.id)
    assertion = key.get(options)
    svc.webauthn.finish_authentication(handle, assertion, user_id=alice.id)

    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_authentication(handle, assertion, user_id=alice.id)

    options, handle = svc.webauthn.begin_authentication(alice.id)
    clock.advance(timedelta(minutes=6))
    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_authentication(handle, key.get(options), user_id=alice.id)


def test_a_registration_challenge_does_not_serve_a_sign_in(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    options, _ = svc.webauthn.begin_authentication(alice.id)
    _, registration_handle = svc.webauthn.begin_registration(alice)

    with pytest.raises(PasskeyChallengeExpired):
        svc.webauthn.finish_authentication(registration_handle, key.get(options), user_id=alice.id)


@pytest.mark.parametrize(
    "spoil",
    ["signature", "authenticatorData", "clientDataJSON", "json"],
)
def test_a_forged_or_broken_assertion_is_refused_and_changes_nothing(
    svc: Services, alice: UserRecord, key: SoftAuthenticator, spoil: str
) -> None:
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_authentication(alice.id)
    assertion = key.get(options)
    if spoil == "json":
        sent: object = "{not json"
    else:
        raw = bytearray(from_b64url(assertion["response"][spoil]))
        raw[-1] ^= 0x01
        assertion["response"][spoil] = b64url(bytes(raw))
        sent = assertion

    with pytest.raises(PasskeyAuthenticationFailed):
        svc.webauthn.finish_authentication(handle, sent, user_id=alice.id)  # type: ignore[arg-type]

    [stored] = svc.webauthn.list(alice)
    assert (stored.sign_count, stored.last_used_at) == (0, None)


def test_an_assertion_for_another_origin_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)

    with pytest.raises(PasskeyAuthenticationFailed, match="origin"):
        authenticate(svc, alice, key, origin="http://auth.localhost:9999")


def test_a_counter_that_goes_backwards_means_a_cloned_key_and_is_refused(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    authenticate(svc, alice, key, sign_count=10)

    for stale in (10, 9):
        with pytest.raises(PasskeyCloned, match=f"went from 10 to {stale}"):
            authenticate(svc, alice, key, sign_count=stale)

    [stored] = svc.webauthn.list(alice)
    assert stored.sign_count == 10
    assert last_audit(svc).reason == "passkey-sign-count-regressed"
    assert authenticate(svc, alice, key, sign_count=11).sign_count == 11


def test_authenticators_without_a_counter_keep_working(svc: Services, alice: UserRecord) -> None:
    synced = SoftAuthenticator(origin=svc.settings.portal_url, counter=False)
    register(svc, alice, synced)

    for _ in range(3):
        assert authenticate(svc, alice, synced).sign_count == 0


def test_a_disabled_user_cannot_finish_a_passkey_sign_in(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    register(svc, alice, key)
    options, handle = svc.webauthn.begin_authentication(alice.id)
    svc.directory.set_enabled("alice", False, actor="admin:root")

    with pytest.raises(PasskeyAuthenticationFailed, match="cannot sign in"):
        svc.webauthn.finish_authentication(handle, key.get(options), user_id=alice.id)


# Management


def test_remove_deletes_only_your_own_passkey_and_is_audited(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    mine = register(svc, alice, key)
    bob = user(svc, "bob")

    with pytest.raises(UnknownPasskey, match=f"bob has no passkey with id {mine.id}"):
        svc.webauthn.remove(bob, mine.id, "user:bob")
    assert len(svc.webauthn.list(alice)) == 1

    removed = svc.webauthn.remove(alice, mine.id, "admin:root")

    assert removed.id == mine.id and svc.webauthn.list(alice) == []
    record = last_audit(svc)
    assert (record.action, record.actor, record.target) == (
        Action.MFA_REMOVED,
        "admin:root",
        "user:alice",
    )
    assert "webauthn" not in svc.auth.second_factors(alice.id)
    with pytest.raises(PasskeyAuthenticationFailed):
        svc.webauthn.begin_authentication(alice.id)


def test_rename_changes_the_label_of_your_own_passkey(
    svc: Services, alice: UserRecord, key: SoftAuthenticator
) -> None:
    mine = register(svc, alice, key, "laptop")

    renamed = svc.webauthn.rename(alice, mine.id, " Old\nlaptop ", "user:alice")

    assert renamed.name == "Old laptop"
    assert [p.name for p in svc.webauthn.list(alice)] == ["Old laptop"]
    assert json.loads(last_audit(svc).details) == {
        "factor": "webauthn",
        "passkey": mine.id,
        "old": "laptop",
        "new": "Old laptop",
    }
    with pytest.raises(UnknownPasskey):
        svc.webauthn.rename(user(svc, "bob"), mine.id, "mine now", "user:bob")
