"""Helpers the passkey service tests share (their fixtures are in conftest.py)."""

from __future__ import annotations

from nevertrust.app import Services
from nevertrust.audit import SealedRecord
from nevertrust.identity import UserRecord
from nevertrust.identity.models import WebAuthnCredentialRecord
from tests.soft_authenticator import SoftAuthenticator

PASSWORD = "correct horse battery"


def user(svc: Services, name: str) -> UserRecord:
    found = svc.directory.get_user(name)
    assert found is not None
    return found


def register(
    svc: Services, who: UserRecord, key: SoftAuthenticator, name: str = "laptop"
) -> WebAuthnCredentialRecord:
    options, handle = svc.webauthn.begin_registration(who)
    return svc.webauthn.finish_registration(who, handle, key.create(options), name)


def audit(svc: Services) -> list[SealedRecord]:
    with svc.uow.read() as uow:
        return list(uow.audit.iterate())
