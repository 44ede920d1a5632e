"""The two WebAuthn ceremonies as pure functions: options out, verified facts in.

WebAuthn Level 2 (https://www.w3.org/TR/webauthn-2/): registration §7.1, authentication
§7.2, signature counter §6.1.1. py_webauthn does the cryptography; these functions fix our
choices (algorithms, resident key and user verification preferred, no attestation) and
turn every library error into one error type per ceremony. No storage, no clock.

Error tree (all ``NeverTrustError``):

    PasskeyChallengeExpired (401)     no live challenge for this handle, ceremony and user
    PasskeyRegistrationFailed (400)   the authenticator's attestation was refused
    PasskeyAuthenticationFailed (401) the assertion was refused
     +-- PasskeyCloned                correctly signed, but the counter did not advance
    UnknownPasskey (404)              no such passkey on this account
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from nevertrust.errors import InvalidInput, NotFound, Unauthenticated
from nevertrust.identity.models import WebAuthnCredentialRecord

__all__ = [
    "Credential",
    "NewPasskey",
    "PasskeyAuthenticationFailed",
    "PasskeyChallengeExpired",
    "PasskeyCloned",
    "PasskeyRegistrationFailed",
    "UnknownPasskey",
    "authentication_options",
    "clean_name",
    "discoverable_options",
    "parse_assertion",
    "registration_options",
    "verify_assertion",
    "verify_attestation",
]

# ES256 first: every platform authenticator has it; EdDSA and RS256 for security keys
# and Windows Hello.
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
MAX_NAME = 64
_TRANSPORTS = {t.value: t for t in AuthenticatorTransport}
# What py_webauthn and the parsers under it (JSON, base64, CBOR, COSE) raise on garbage.
_MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)

Credential = str | Mapping[str, Any]  # the browser's PublicKeyCredential as JSON


class PasskeyChallengeExpired(Unauthenticated):
    """The ceremony's challenge is unknown, expired, already used or someone else's."""

    code = "passkey-challenge-expired"


class PasskeyRegistrationFailed(InvalidInput):
    code = "passkey-registration-failed"


class PasskeyAuthenticationFailed(Unauthenticated):
    code = "passkey-authentication-failed"


class PasskeyCloned(PasskeyAuthenticationFailed):
    """A correctly signed assertion whose counter did not advance: a copied key is in use."""

    code = "passkey-sign-count-regressed"


class UnknownPasskey(NotFound):
    code = "unknown-passkey"


@dataclass(frozen=True, slots=True)
class NewPasskey:
    """What a verified registration tells us, ready to store."""

    credential_id: str  # base64url, as browsers send it back
    public_key: bytes  # COSE
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backed_up: bool
    attachment: str = ""  # "platform" or "cross-platform" as the browser says; "" unsaid


def _refused(exc: Exception) -> str:
    text = str(exc).replace("See __cause__ for more info", "").strip().rstrip(".")
    return f"the authenticator's response was refused: {text[:200] or type(exc).__name__}"


def _json(credential: Credential) -> str | dict[str, Any]:
    return credential if isinstance(credential, str) else dict(credential)


def _descriptor(record: WebAuthnCredentialRecord) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(record.credential_id),
        transports=[_TRANSPORTS[t] for t in record.transports if t in _TRANSPORTS] or None,
    )


def clean_name(name: str) -> str:
    """A passkey label as people will read it: printable, single-spaced, at most 64."""
    # Line breaks and tabs separate words; other control and format characters go.
    spaced = "".join(" " if c.isspace() else c for c in name)
    printable = "".join(c for c in spaced if unicodedata.category(c)[0] != "C")
    cleaned = " ".join(printable.split())
    if len(cleaned) > MAX_NAME:
        raise InvalidInput(
            f"passkey name too long: expected at most {MAX_NAME} characters, got {len(cleaned)}",
            field="name",
        )
    return cleaned or "Passkey"


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_id: int,
    user_name: str,
    display_name: str,
    timeout_ms: int,
    existing: Sequence[WebAuthnCredentialRecord],
    platform_only: bool = False,
) -> tuple[str, bytes]:
    """Options for ``navigator.credentials.create()`` as JSON, and their challenge.

    ``platform_only``: the browser may offer only this machine's own authenticator (a
    device's platform credential), never a security key or a phone that can travel.
    """
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=user_name,
        # §14.6.1: the user handle must not identify the person; the numeric id does not.
        user_id=str(user_id).encode(),
        user_display_name=display_name or user_name,
        timeout=timeout_ms,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM if platform_only else None,
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        # One authenticator is registered once: the browser refuses to create a second.
        exclude_credentials=[_descriptor(r) for r in existing],
        supported_pub_key_algs=ALGORITHMS,
    )
    return options_to_json(options), options.challenge


def verify_attestation(
    *, credential: Credential, expected_challenge: bytes, expected_rp_id: str, expected_origin: str
) -> NewPasskey:
    """Check a registration response (§7.1). Raises ``PasskeyRegistrationFailed``."""
    try:
        parsed = parse_registration_credential_json(_json(credential))
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected_challenge,
            expected_rp_id=expected_rp_id,
            expected_origin=expected_origin,
            supported_pub_key_algs=ALGORITHMS,
        )
    except _MALFORMED as exc:
        raise PasskeyRegistrationFailed(_refused(exc)) from exc
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(sorted({t.value for t in parsed.response.transports or ()})),
        aaguid=verified.aaguid,
        backed_up=verified.credential_backed_up,
        attachment=parsed.authenticator_attachment.value if parsed.authenticator_attachment else "",
    )


def authentication_options(
    *, rp_id: str, timeout_ms: int, allowed: Sequence[WebAuthnCredentialRecord]
) -> tuple[str, bytes]:
    """Options for ``navigator.credentials.get()`` as JSON, and their challenge."""
    options = generate_authentication_options(
        rp_id=rp_id,
        timeout=timeout_ms,
        allow_credentials=[_descriptor(r) for r in allowed],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), options.challenge


def discoverable_options(*, rp_id: str, timeout_ms: int) -> tuple[str, bytes]:
    """Options for a sign-in that starts with the passkey, not a user name (§5.4.6).

    No credential is named: the authenticator offers the passkeys it holds for this site
    and its answer says whose it is. User verification is required, so that the passkey
    alone is two factors: the device, and the fingerprint or PIN that unlocks it.
    """
    options = generate_authentication_options(
        rp_id=rp_id,
        timeout=timeout_ms,
        allow_credentials=[],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options), options.challenge


def parse_assertion(credential: Credential) -> AuthenticationCredential:
    """The assertion's structure, enough to look its passkey up; nothing verified yet."""
    try:
        return parse_authentication_credential_json(_json(credential))
    except _MALFORMED as exc:
        raise PasskeyAuthenticationFailed(_refused(exc)) from exc


def verify_assertion(
    *,
    credential: AuthenticationCredential,
    expected_challenge: bytes,
    expected_rp_id: str,
    expected_origin: str,
    stored: WebAuthnCredentialRecord,
) -> tuple[int, bool]:
    """Check an authentication response (§7.2) against a stored passkey.

    Returns the new signature counter and whether the authenticator verified the user.
    Raises ``PasskeyAuthenticationFailed``, or ``PasskeyCloned`` for a counter that did not
    advance.
    """
    try:
        # The library gets counter 0 so that it checks the signature first: only a
        # correctly signed response says anything about a cloned authenticator.
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=expected_rp_id,
            expected_origin=expected_origin,
            credential_public_key=stored.public_key,
            credential_current_sign_count=0,
        )
    except _MALFORMED as exc:
        raise PasskeyAuthenticationFailed(_refused(exc)) from exc
    count = verified.new_sign_count
    # §6.1.1: a counter that does not grow means two copies of one key are in use.
    # Authenticators that keep no counter (most synced passkeys) send 0 forever: allowed.
    if (count or stored.sign_count) and count <= stored.sign_count:
        raise PasskeyCloned(
            f"this passkey's signature counter went from {stored.sign_count} to {count}: "
            "the authenticator may have been copied, so it was refused"
        )
    return count, verified.user_verified
