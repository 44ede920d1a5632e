"""Device service tests run on a real SQLite home with a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from tests.soft_device import SoftDevice, posture

PASSWORD = "correct horse battery"


@pytest.fixture
def svc(services: Services) -> Services:
    services.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    services.directory.add_user("bob", actor="cli:root", password=PASSWORD)
    return services


@dataclass
class Enrolled:
    soft: SoftDevice
    device_id: str
    certificate_pem: str
    ca_pem: str


@pytest.fixture
def enrol(svc: Services, clock: FixedClock):  # type: ignore[no-untyped-def]
    """Enrol a fresh software device of ``user`` (default alice) with a new token."""

    def enrol_(user: str = "alice", **posture_changes: object) -> Enrolled:
        soft = SoftDevice()
        token = svc.device_enrolment.create_token(user, actor="cli:root").token
        done = svc.device_enrolment.enrol(
            token=token,
            public_key_pem=soft.public_pem,
            name=f"{user}-laptop",
            posture=posture(**posture_changes),
        )
        soft.device_id = done.device.device_id
        return Enrolled(soft, done.device.device_id, done.certificate.pem, done.ca_certificate_pem)

    return enrol_
