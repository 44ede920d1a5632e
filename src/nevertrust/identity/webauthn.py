"""Passkeys (WebAuthn): the relying party's state around the ceremonies.

A passkey is a second factor after a password, or, with user verification, a sign-in on
its own (passkey-first, in ``_webauthn_passwordless``, mixed into the service here).

The ceremonies themselves are pure functions in ``_webauthn_ceremony``. This service
keeps what they need between the two halves and afterwards:

- the challenge lives on the server, keyed by the SHA-256 of a random handle the browser
  carries in a cookie; it is bound to one user and one ceremony, expires after five
  minutes and is consumed by the first attempt, right or wrong (no replay);
- registered passkeys, their public keys and signature counters;
- the audit trail: every registration, verification, rename and removal, and every
  refusal, is recorded in the transaction that makes (or refuses) the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action
from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token, new_token
from nevertrust.identity._webauthn_ceremony import (
    Credential,
    PasskeyAuthenticationFailed,
    PasskeyChallengeExpired,
    PasskeyCloned,
    PasskeyRegistrationFailed,
    UnknownPasskey,
    authentication_options,
    clean_name,
    parse_assertion,
    registration_options,
    verify_assertion,
    verify_attestation,
)
from nevertrust.identity._webauthn_passwordless import PasskeySignIn, PasswordlessPasskeys
from nevertrust.identity._webauthn_records import record_passkey_event, record_passkey_refusal
from nevertrust.identity.models import ChallengeRecord, UserRecord, WebAuthnCredentialRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "MAX_PASSKEYS",
    "PasskeyAuthenticationFailed",
    "PasskeyChallengeExpired",
    "PasskeyCloned",
    "PasskeyRegistrationFailed",
    "PasskeySignIn",
    "UnknownPasskey",
    "WebAuthnService",
]

MAX_PASSKEYS = 20  # per user: every device one person owns, and a bounded list
_REGISTER = "webauthn:register"
_AUTHENTICATE = "webauthn:authenticate"

_Refusal = PasskeyChallengeExpired | PasskeyRegistrationFailed | PasskeyAuthenticationFailed


class WebAuthnService(PasswordlessPasskeys):
    """Register passkeys for signed-in users; verify them as a second factor or alone.

    ``rp_id`` and ``origin`` are what every response must be bound to: the portal host
    (or a parent domain of it) and the portal URL. A response made for another site fails.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        rp_id: str,
        rp_name: str,
        origin: str,
        challenge_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._rp_id = rp_id
        self._rp_name = rp_name
        self._origin = origin
        self._challenge_ttl = challenge_ttl

    @property
    def challenge_ttl(self) -> timedelta:
        return self._challenge_ttl

    @property
    def _timeout_ms(self) -> int:
        return int(self._challenge_ttl.total_seconds() * 1000)

    # Registration

    def begin_registration(
        self, user: UserRecord, *, device_id: str | None = None
    ) -> tuple[str, str]:
        """Options for ``navigator.credentials.create()`` and the handle of their challenge.

        ``device_id``: the caller verified that this person holds that device (a browser
        binding proof, ``devices.browser_binding``); the new passkey must be this
        machine's platform authenticator and is stored as the device's. The device id
        stays on the server, on the challenge, so the browser cannot name another one.
        """
        with self._uow.read() as uow:
            existing = uow.webauthn.list_for_user(user.id)
        if len(existing) >= MAX_PASSKEYS:
            raise PasskeyRegistrationFailed(
                f"too many passkeys: at most {MAX_PASSKEYS} per account; remove one first"
            )
        options, challenge = registration_options(
            rp_id=self._rp_id,
            rp_name=self._rp_name,
            user_id=user.id,
            user_name=user.name,
            display_name=user.display_name,
            timeout_ms=self._timeout_ms,
            existing=existing,
            platform_only=device_id is not None,
        )
        return options, self._new_challenge(user.id, _REGISTER, challenge, device_id=device_id)

    def finish_registration(
        self,
        user: UserRecord,
        handle: str,
        credential_json: Credential,
        name: str,
        *,
        source_ip: str = "",
    ) -> WebAuthnCredentialRecord:
        """Verify the attestation and store the new passkey; the challenge is spent either way.

        Raises ``PasskeyChallengeExpired`` or ``PasskeyRegistrationFailed``; then nothing but
        the spent challenge and the audit record of the refusal is written.
        """
        label = clean_name(name)  # checked before the challenge is spent: retry is possible
        now = self._clock.now()
        refusal: _Refusal | None = None
        with self._uow.write() as uow:
            try:
                challenge = self._take(uow, handle, _REGISTER, user.id, now)
                new = verify_attestation(
                    credential=credential_json,
                    expected_challenge=challenge.challenge,
                    expected_rp_id=self._rp_id,
                    expected_origin=self._origin,
                )
                if uow.webauthn.get_by_credential_id(new.credential_id) is not None:
                    raise PasskeyRegistrationFailed("this authenticator is already registered")
                if challenge.device_id is not None and new.attachment != "platform":
                    raise PasskeyRegistrationFailed(
                        "a device's passkey must be this computer's own authenticator "
                        f"(platform), not a {new.attachment or 'unnamed'} one"
                    )
                if len(uow.webauthn.list_for_user(user.id)) >= MAX_PASSKEYS:
                    raise PasskeyRegistrationFailed(
                        f"too many passkeys: at most {MAX_PASSKEYS} per account"
                    )
                pk = uow.webauthn.insert(
                    user_id=user.id,
                    credential_id=new.credential_id,
                    public_key=new.public_key,
                    sign_count=new.sign_count,
                    transports=new.transports,
                    name=label,
                    aaguid=new.aaguid,
                    backed_up=new.backed_up,
                    now=now,
                    device_id=challenge.device_id,
                )
                record_passkey_event(
                    uow,
                    Action.MFA_ENROLLED,
                    user,
                    now,
                    source_ip,
                    passkey=pk,
                    name=label,
                    aaguid=new.aaguid,
                    backed_up=new.backed_up,
                    **({"device": challenge.device_id} if challenge.device_id else {}),
                )
                uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
                stored = uow.webauthn.get_by_credential_id(new.credential_id)
            except (PasskeyChallengeExpired, PasskeyRegistrationFailed) as exc:
                refusal = exc
                record_passkey_refusal(
                    uow, f"user:{user.name}", now, source_ip, exc, ceremony="registration"
                )
        # Raised after the commit, so the spent challenge and the refusal record persist.
        if refusal is not None:
            raise refusal
        assert stored is not None  # noqa: S101 - inserted above, in the same transaction
        return stored

    # Authentication

    def begin_authentication(self, user_id: int) -> tuple[str, str]:
        """Options for ``navigator.credentials.get()`` naming only this user's passkeys."""
        with self._uow.read() as uow:
            existing = uow.webauthn.list_for_user(user_id)
        if not existing:
            raise PasskeyAuthenticationFailed("no passkey is registered for this account")
        options, challenge = authentication_options(
            rp_id=self._rp_id, timeout_ms=self._timeout_ms, allowed=existing
        )
        return options, self._new_challenge(user_id, _AUTHENTICATE, challenge)

    def finish_authentication(
        self, handle: str, credential_json: Credential, *, user_id: int, source_ip: str = ""
    ) -> WebAuthnCredentialRecord:
        """Verify an assertion by one of ``user_id``'s passkeys; returns the passkey used.

        Only when this returns may the caller count the second factor as verified.
        Raises ``PasskeyChallengeExpired`` or ``PasskeyAuthenticationFailed`` (and its
        ``PasskeyCloned``), after recording the refusal.
        """
        now = self._clock.now()
        refusal: _Refusal | None = None
        with self._uow.write() as uow:
            user = uow.users.get_by_id(user_id)
            try:
                challenge = self._take(uow, handle, _AUTHENTICATE, user_id, now)
                if user is None or not user.enabled:
                    raise PasskeyAuthenticationFailed("this account cannot sign in")
                credential = parse_assertion(credential_json)
                stored = uow.webauthn.get_by_credential_id(credential.id)
                if stored is None or stored.user_id != user_id:
                    raise PasskeyAuthenticationFailed(
                        "this passkey is not registered to your account"
                    )
                count, user_verified = verify_assertion(
                    credential=credential,
                    expected_challenge=challenge.challenge,
                    expected_rp_id=self._rp_id,
                    expected_origin=self._origin,
                    stored=stored,
                )
                uow.webauthn.record_use(stored.id, sign_count=count, now=now)
                record_passkey_event(
                    uow,
                    Action.MFA_VERIFIED,
                    user,
                    now,
                    source_ip,
                    passkey=stored.id,
                    user_verified=user_verified,
                )
                used = replace(stored, sign_count=count, last_used_at=now)
            except (PasskeyChallengeExpired, PasskeyAuthenticationFailed) as exc:
                refusal = exc
                subject = f"user:{user.name}" if user is not None else f"user-id:{user_id}"
                record_passkey_refusal(uow, subject, now, source_ip, exc, ceremony="authentication")
        if refusal is not None:
            raise refusal
        return used

    # Management

    def list(self, user: UserRecord) -> Sequence[WebAuthnCredentialRecord]:
        with self._uow.read() as uow:
            return uow.webauthn.list_for_user(user.id)

    def remove(
        self, user: UserRecord, credential_pk: int, actor: str, *, source_ip: str = ""
    ) -> WebAuthnCredentialRecord:
        """Delete one of ``user``'s passkeys; raises ``UnknownPasskey`` for anyone else's."""
        now = self._clock.now()
        with self._uow.write() as uow:
            found = self._owned(uow, user, credential_pk)
            uow.webauthn.delete(user.id, credential_pk)
            record_passkey_event(
                uow, Action.MFA_REMOVED, user, now, source_ip, actor=actor, passkey=found.id,
                name=found.name,
            )  # fmt: skip
            uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        return found

    def rename(
        self, user: UserRecord, credential_pk: int, name: str, actor: str, *, source_ip: str = ""
    ) -> WebAuthnCredentialRecord:
        label = clean_name(name)
        now = self._clock.now()
        with self._uow.write() as uow:
            found = self._owned(uow, user, credential_pk)
            uow.webauthn.rename(user.id, credential_pk, label)
            record_passkey_event(
                uow, Action.MFA_RENAMED, user, now, source_ip, actor=actor, passkey=found.id,
                old=found.name, new=label,
            )  # fmt: skip
            uow.changes.record(ChangeEvent(Topic.USER, str(user.id)), now=now)
        return replace(found, name=label)

    # Internals

    def _new_challenge(
        self, user_id: int | None, purpose: str, challenge: bytes, *, device_id: str | None = None
    ) -> str:
        handle = new_token()
        now = self._clock.now()
        with self._uow.write() as uow:
            uow.challenges.insert(
                ChallengeRecord(
                    id_hash=hash_token(handle),
                    user_id=user_id,
                    purpose=purpose,
                    challenge=challenge,
                    created_at=now,
                    expires_at=now + self._challenge_ttl,
                    device_id=device_id,
                )
            )
        return handle

    @staticmethod
    def _take(
        uow: UnitOfWork, handle: str, purpose: str, user_id: int, now: datetime
    ) -> ChallengeRecord:
        # Taking deletes: a handle stolen or replayed, even for another account, is spent.
        found = (
            uow.challenges.take(hash_token(handle), purpose=purpose, now=now) if handle else None
        )
        if found is None:
            raise PasskeyChallengeExpired(
                "the passkey request expired or was already used: start again"
            )
        if found.user_id != user_id:
            raise PasskeyChallengeExpired(
                "the passkey request was started for another account: start again"
            )
        return found

    @staticmethod
    def _owned(uow: UnitOfWork, user: UserRecord, credential_pk: int) -> WebAuthnCredentialRecord:
        for record in uow.webauthn.list_for_user(user.id):
            if record.id == credential_pk:
                return record
        raise UnknownPasskey(
            f"{user.name} has no passkey with id {credential_pk}", passkey=credential_pk
        )
