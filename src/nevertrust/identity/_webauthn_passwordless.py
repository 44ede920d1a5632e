"""Passkey-first sign-in: the passkey says who is signing in, no user name is typed.

The browser is asked for any passkey it holds for this site (a discoverable credential),
with user verification required: possession of the device plus the fingerprint or PIN
that unlocks it, two factors in one gesture. The answer is looked up by its credential
id and checked with the same pure functions as the second-factor ceremony (signature,
origin, rp id, counter). The challenge belongs to nobody (``user_id`` None) because
nobody is known when it is issued.

Kept apart from ``webauthn.py`` so each module stays small; ``WebAuthnService`` mixes
this in and provides the storage, clock and relying-party settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token
from nevertrust.identity._webauthn_ceremony import (
    Credential,
    PasskeyAuthenticationFailed,
    PasskeyChallengeExpired,
    discoverable_options,
    parse_assertion,
    verify_assertion,
)
from nevertrust.identity._webauthn_records import record_passkey_event, record_passkey_refusal
from nevertrust.identity.models import (
    ChallengeRecord,
    UserKind,
    UserRecord,
    WebAuthnCredentialRecord,
)

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["PASSWORDLESS", "PasskeySignIn", "PasswordlessPasskeys"]

PASSWORDLESS = "webauthn:passwordless"


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    """A verified passkey-first sign-in: who it is, and the passkey they used."""

    user: UserRecord
    passkey: WebAuthnCredentialRecord


class PasswordlessPasskeys:
    """The passkey-first ceremony, as a part of ``WebAuthnService``."""

    _uow: UnitOfWorkFactory
    _clock: Clock
    _rp_id: str
    _origin: str
    _challenge_ttl: timedelta

    if TYPE_CHECKING:

        def _new_challenge(self, user_id: int | None, purpose: str, challenge: bytes) -> str: ...

    def begin_passwordless(self) -> tuple[str, str]:
        """Options for ``navigator.credentials.get()`` naming no passkey, and the handle."""
        options, challenge = discoverable_options(
            rp_id=self._rp_id, timeout_ms=int(self._challenge_ttl.total_seconds() * 1000)
        )
        return options, self._new_challenge(None, PASSWORDLESS, challenge)

    def finish_passwordless(
        self, handle: str, credential_json: Credential, *, source_ip: str = ""
    ) -> PasskeySignIn:
        """Verify a passkey-first assertion; returns whose passkey it is.

        Only when this returns may the caller open a session for that user. Raises
        ``PasskeyChallengeExpired`` or ``PasskeyAuthenticationFailed`` (and its
        ``PasskeyCloned``) after recording the refusal; then the spent challenge and the
        audit record are all that is written.
        """
        now = self._clock.now()
        refusal: PasskeyChallengeExpired | PasskeyAuthenticationFailed | None = None
        user: UserRecord | None = None
        with self._uow.write() as uow:
            try:
                challenge = _take_anonymous(uow, handle, now)
                credential = parse_assertion(credential_json)
                stored = uow.webauthn.get_by_credential_id(credential.id)
                if stored is None:
                    raise PasskeyAuthenticationFailed(
                        "this passkey is not registered here: sign in with your password, "
                        "then add it on your account page"
                    )
                user = uow.users.get_by_id(stored.user_id)
                handle_sent = credential.response.user_handle
                if handle_sent and handle_sent != str(stored.user_id).encode():
                    raise PasskeyAuthenticationFailed(
                        "the passkey's answer names another account than the one it belongs to"
                    )
                if user is None or not user.enabled or user.kind is UserKind.SERVICE:
                    raise PasskeyAuthenticationFailed("this account cannot sign in")
                count, user_verified = verify_assertion(
                    credential=credential,
                    expected_challenge=challenge.challenge,
                    expected_rp_id=self._rp_id,
                    expected_origin=self._origin,
                    stored=stored,
                )
                if not user_verified:
                    raise PasskeyAuthenticationFailed(
                        "the authenticator did not verify you (fingerprint, face or PIN): "
                        "a passkey alone signs you in only with that check"
                    )
                uow.webauthn.record_use(stored.id, sign_count=count, now=now)
                record_passkey_event(
                    uow,
                    Action.MFA_VERIFIED,
                    user,
                    now,
                    source_ip,
                    ceremony="passwordless",
                    passkey=stored.id,
                    user_verified=True,
                )
                used = replace(stored, sign_count=count, last_used_at=now)
            except (PasskeyChallengeExpired, PasskeyAuthenticationFailed) as exc:
                refusal = exc
                # Nobody is known before the passkey is found: the record says so.
                subject = f"user:{user.name}" if user is not None else "passkey:unknown"
                record_passkey_refusal(uow, subject, now, source_ip, exc, ceremony="passwordless")
        # Raised after the commit, so the spent challenge and the refusal record persist.
        if refusal is not None:
            raise refusal
        assert user is not None  # noqa: S101 - checked above, in the same transaction
        return PasskeySignIn(user=user, passkey=used)


def _take_anonymous(uow: UnitOfWork, handle: str, now: datetime) -> ChallengeRecord:
    # Taking deletes: a handle replayed, or one from another ceremony, is spent.
    found = (
        uow.challenges.take(hash_token(handle), purpose=PASSWORDLESS, now=now) if handle else None
    )
    if found is None or found.user_id is not None:
        raise PasskeyChallengeExpired(
            "the passkey request expired or was already used: start again"
        )
    return found
