"""Fixtures of the passkey service tests: two people and a software authenticator."""

from __future__ import annotations

import pytest

from nevertrust.app import Services
from tests.soft_authenticator import SoftAuthenticator
from tests.unit.identity._passkeys import PASSWORD


@pytest.fixture
def svc(services: Services) -> Services:
    services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    services.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    return services


@pytest.fixture
def key(svc: Services) -> SoftAuthenticator:
    return SoftAuthenticator(origin=svc.settings.portal_url)
