"""The identity report over a real directory (both backends, fixed clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.errors import InvalidInput

ROOT = "cli:root"


def _add_people(svc: Services, *names: str) -> dict[str, int]:
    for name in names:
        svc.directory.add_user(name, actor=ROOT)
    return {u.name: u.id for u in svc.directory.list_users()}


def test_identity_report_counts_second_factors_activity_owners_and_stale_keys(
    any_services: Services, clock: FixedClock
) -> None:
    svc = any_services
    start = clock.now()
    ids = _add_people(svc, "alice", "bob", "carol", "dave", "erin")
    svc.directory.set_enabled("erin", False, actor=ROOT)
    svc.service_accounts.create("backup-bot", owner="dave", actor=ROOT)
    svc.service_accounts.create("ci-bot", owner="alice", actor=ROOT)
    _, idle = svc.service_accounts.issue_key("ci-bot", "idle", ["api:read"], actor=ROOT)
    used, _ = svc.service_accounts.issue_key("backup-bot", "nightly", ["api:read"], actor=ROOT)
    with svc.uow.write() as uow:
        uow.totp.put(ids["alice"], b"sealed", now=start)
        uow.totp.confirm(ids["alice"], step=1, now=start)
        uow.totp.put(ids["bob"], b"sealed", now=start)  # enrolment never confirmed
        uow.webauthn.insert(
            user_id=ids["carol"],
            credential_id="cred-1",
            public_key=b"pk",
            sign_count=0,
            transports=["usb"],
            name="key",
            aaguid="",
            backed_up=False,
            now=start,
        )
    clock.advance(timedelta(days=50))
    with svc.uow.write() as uow:
        uow.users.set_last_login(ids["alice"], now=clock.now() - timedelta(days=1))
        uow.users.set_last_login(ids["bob"], now=clock.now() - timedelta(days=45))
    svc.service_accounts.authenticate(used)
    svc.directory.set_enabled("dave", False, actor=ROOT)  # backup-bot loses its owner

    report = svc.reports.identity().to_json()

    assert report["generated_at"] == clock.now().isoformat()
    assert (report["people"], report["people_with_mfa"], report["mfa_percent"]) == (3, 2, 66.7)
    assert report["people_with_phishing_resistant_mfa"] == 1
    assert report["phishing_resistant_percent"] == 33.3
    assert report["people_without_mfa"] == ["bob"]
    assert [
        (p["name"], p["last_login_at"], p["days_inactive"]) for p in report["inactive_people"]
    ] == [
        ("bob", (clock.now() - timedelta(days=45)).isoformat(), 45),
        ("carol", None, 50),
    ]
    assert report["service_accounts"] == 2
    assert report["service_accounts_without_owner"] == [
        {"name": "backup-bot", "owner": "dave", "problem": "owner-disabled"}
    ]
    assert report["service_accounts_with_stale_keys"] == [
        {"name": "ci-bot", "owner": "alice", "stale_keys": [idle.prefix]}
    ]


def test_inactive_days_is_configurable_and_checked(
    any_services: Services, clock: FixedClock
) -> None:
    any_services.directory.add_user("alice", actor=ROOT)
    clock.advance(timedelta(days=10))

    assert any_services.reports.identity().inactive_people == ()
    assert [p.name for p in any_services.reports.identity(inactive_days=10).inactive_people] == [
        "alice"
    ]
    with pytest.raises(InvalidInput, match="inactive_days must be between 1 and 3650, got 0"):
        any_services.reports.identity(inactive_days=0)
