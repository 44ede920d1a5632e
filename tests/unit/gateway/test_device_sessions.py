"""Browser sessions bound to a device: the gateway decides on that device's current state.

A browser cannot show the device certificate, so a session opened with the device's
platform passkey names the device instead. That only helps the owner, only while the
device reports in and is compliant, and a quarantine or a bad report must shut the next
request out, without the session itself changing. A certificate on the connection, when
there is one, speaks for the device instead of the session.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.audit import AuditLog
from nevertrust.clock import FixedClock
from nevertrust.devices.models import DeviceView
from nevertrust.domain import AccessRule, App, Principal, Reason
from nevertrust.gateway import AssertionSigner, SessionCache, SigningKey, SnapshotHolder
from nevertrust.gateway.access import AccessChecker, Check, Outcome
from nevertrust.gateway.client_certs import ClientDevice
from nevertrust.gateway.devices import DeviceDirectory
from nevertrust.gateway.state import ActivityLog, CachedSession
from nevertrust.identity import SessionService
from nevertrust.ports import UnitOfWork

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=10)
ALICE, BOB = 1, 2
LAPTOP, PHONE, BOBS = "dev_alicelaptop00000", "dev_alicephone000000", "dev_boblaptop0000000"


def view(device_id: str, *, user_id: int = ALICE, state: str = "compliant") -> DeviceView:
    """A device as the directory's source lists it, last reported a minute ago."""
    return DeviceView(
        device_id=device_id,
        user_id=user_id,
        state=state,
        platform="linux",
        managed=True,
        last_report_at=NOW - timedelta(minutes=1),
        certificate_serial=device_id.encode().hex()[:32],
    )


class Devices:
    """A real, changeable device source, like the devices table behind the directory."""

    def __init__(self, *views: DeviceView) -> None:
        self.views = {v.device_id: v for v in views}

    def __call__(self) -> list[DeviceView]:
        return list(self.views.values())

    def set(self, device_id: str, **changes: Any) -> None:
        self.views[device_id] = replace(self.views[device_id], **changes)


@pytest.fixture
def devices() -> Devices:
    return Devices(view(LAPTOP), view(PHONE, state="quarantined"), view(BOBS, user_id=BOB))


@pytest.fixture
def directory(devices: Devices) -> DeviceDirectory:
    built = DeviceDirectory(devices, stale_after=STALE_AFTER)
    assert built.reload()
    return built


# ---- DeviceDirectory.state_for_session


def test_an_unbound_session_has_no_device(directory: DeviceDirectory) -> None:
    assert directory.state_for_session(None, ALICE, NOW) is None


def test_an_unknown_or_removed_device_is_no_device(
    directory: DeviceDirectory, devices: Devices
) -> None:
    assert directory.state_for_session("dev_nosuchdevice0000", ALICE, NOW) is None
    del devices.views[LAPTOP]
    assert directory.reload()
    assert directory.state_for_session(LAPTOP, ALICE, NOW) is None


def test_someone_elses_device_does_not_count(directory: DeviceDirectory) -> None:
    """A session of Alice's naming Bob's compliant laptop is treated as no device."""
    assert directory.state_for_session(BOBS, ALICE, NOW) is None
    bobs = directory.state_for_session(BOBS, BOB, NOW)
    assert bobs is not None and bobs.compliant


def test_the_owners_compliant_fresh_device_is_compliant(directory: DeviceDirectory) -> None:
    state = directory.state_for_session(LAPTOP, ALICE, NOW)
    assert state is not None
    assert (state.device_id, state.compliant, state.managed, state.platform) == (
        LAPTOP,
        True,
        True,
        "linux",
    )


def test_a_device_that_stopped_reporting_is_not_compliant(directory: DeviceDirectory) -> None:
    """Its last report was compliant, but nothing vouches for it now."""
    reported = NOW - timedelta(minutes=1)
    just_fresh = reported + STALE_AFTER
    fresh = directory.state_for_session(LAPTOP, ALICE, just_fresh)
    assert fresh is not None and fresh.compliant
    stale = directory.state_for_session(LAPTOP, ALICE, just_fresh + timedelta(seconds=1))
    assert stale is not None and stale.device_id == LAPTOP and not stale.compliant


def test_a_device_that_never_reported_is_not_compliant(
    directory: DeviceDirectory, devices: Devices
) -> None:
    devices.set(LAPTOP, last_report_at=None)
    assert directory.reload()
    state = directory.state_for_session(LAPTOP, ALICE, NOW)
    assert state is not None and not state.compliant


@pytest.mark.parametrize("state", ["quarantined", "noncompliant"])
def test_after_a_reload_a_quarantined_or_noncompliant_device_is_noncompliant(
    directory: DeviceDirectory, devices: Devices, state: str
) -> None:
    devices.set(LAPTOP, state=state)
    before = directory.state_for_session(LAPTOP, ALICE, NOW)
    assert before is not None and before.compliant  # the directory is a snapshot...
    assert directory.reload()  # ...rebuilt on every device change event
    after = directory.state_for_session(LAPTOP, ALICE, NOW)
    assert after is not None and not after.compliant


# ---- AccessChecker.evaluate


class NoStorage:
    """Storage for the parts of the checker ``evaluate`` never reaches: the session store
    (only its idle timeout is read) and the audit writer (entries stay queued, unflushed).
    A test that needed a database here would fail loudly instead of opening one."""

    def read(self) -> AbstractContextManager[UnitOfWork]:
        raise AssertionError("evaluate must not read storage")

    def write(self) -> AbstractContextManager[UnitOfWork]:
        raise AssertionError("evaluate must not write storage")


def world() -> tuple[list[App], list[AccessRule], list[Principal]]:
    """`nevertrust apps allow wiki --group eng --require-compliant-device`; alice in eng."""
    apps = [App(name="wiki", upstream="http://127.0.0.1:9001")]
    rules = [AccessRule(rule_id="r1", app="wiki", group="eng", require_compliant_device=True)]
    principals = [Principal(user_id=ALICE, name="alice", groups=frozenset({"eng"}))]
    return apps, rules, principals


@pytest.fixture
def checker(directory: DeviceDirectory) -> AccessChecker:
    """The gateway's checker with the real snapshot, directory, audit queue and PDP."""
    snapshots = SnapshotHolder(world)
    assert snapshots.rebuild()
    clock = FixedClock(NOW)
    return AccessChecker(
        snapshots=snapshots,
        sessions=SessionCache(max_entries=10),
        session_store=SessionService(uow=NoStorage(), clock=clock, idle_timeout=timedelta(hours=1)),
        audit=AuditLog(uow=NoStorage(), flush_interval=60, queue_limit=100),
        signer=AssertionSigner(
            key=SigningKey(kid="k1", private_key=ec.generate_private_key(ec.SECP256R1())),
            issuer="http://auth.localhost",
            ttl_seconds=60,
        ),
        clock=clock,
        activity=ActivityLog(),
        app_url=lambda name: f"http://{name}.localhost",
        devices=directory,
    )


def app_session(device_id: str | None, *, user_id: int = ALICE) -> CachedSession:
    """A wiki app session handed off from a portal session (which passes on its device)."""
    return CachedSession(
        id_hash="app-session",
        user_id=user_id,
        parent_hash="portal-session",
        app_name="wiki",
        auth_methods=frozenset({"hwk", "user"}),
        auth_time=NOW,
        expires_at=NOW + timedelta(hours=1),
        revoked=False,
        last_seen=NOW,
        device_id=device_id,
    )


def request(
    checker: AccessChecker,
    session: CachedSession,
    *,
    client_device: ClientDevice | None = None,
) -> Check:
    return checker.evaluate(
        session,
        app_name="wiki",
        method="GET",
        path="/",
        client_ip="127.0.0.1",
        request_id="req-1",
        now=NOW,
        client_device=client_device,
    )


def denied_for(check: Check) -> tuple[Reason, ...]:
    assert check.outcome is Outcome.DENY, check
    assert check.decision is not None
    return check.decision.reasons


def certificate_of(devices: Devices, device_id: str) -> ClientDevice:
    return ClientDevice(device_id, devices.views[device_id].certificate_serial)


def test_a_session_bound_to_a_compliant_device_reaches_the_app(checker: AccessChecker) -> None:
    assert request(checker, app_session(LAPTOP)).allowed


def test_a_session_without_a_device_is_asked_for_one(checker: AccessChecker) -> None:
    assert Reason.DEVICE_UNKNOWN in denied_for(request(checker, app_session(None)))


def test_quarantine_denies_the_very_next_request_of_the_same_session(
    checker: AccessChecker, directory: DeviceDirectory, devices: Devices
) -> None:
    session = app_session(LAPTOP)
    assert request(checker, session).allowed
    devices.set(LAPTOP, state="quarantined")
    assert directory.reload()  # what the device change event does
    assert Reason.DEVICE_NONCOMPLIANT in denied_for(request(checker, session))


def test_a_device_that_stopped_reporting_is_denied(
    checker: AccessChecker, directory: DeviceDirectory, devices: Devices
) -> None:
    devices.set(LAPTOP, last_report_at=NOW - STALE_AFTER - timedelta(seconds=1))
    assert directory.reload()
    assert Reason.DEVICE_NONCOMPLIANT in denied_for(request(checker, app_session(LAPTOP)))


def test_a_session_naming_someone_elses_device_is_denied(checker: AccessChecker) -> None:
    assert Reason.DEVICE_UNKNOWN in denied_for(request(checker, app_session(BOBS)))


def test_a_certificate_speaks_for_the_device_instead_of_the_session(
    checker: AccessChecker, devices: Devices
) -> None:
    """Bound to the compliant laptop, but the connection shows the quarantined phone's
    certificate: the device on the connection is the phone."""
    check = request(checker, app_session(LAPTOP), client_device=certificate_of(devices, PHONE))
    assert Reason.DEVICE_NONCOMPLIANT in denied_for(check)


def test_a_compliant_certificate_admits_a_session_bound_to_a_quarantined_device(
    checker: AccessChecker, devices: Devices
) -> None:
    check = request(checker, app_session(PHONE), client_device=certificate_of(devices, LAPTOP))
    assert check.allowed


def test_a_superseded_certificate_is_not_rescued_by_the_sessions_device(
    checker: AccessChecker,
) -> None:
    """A certificate that proves nothing still wins: the session's device is not a fallback
    for a connection that showed an old certificate."""
    old = ClientDevice(LAPTOP, "0123456789abcdef")
    check = request(checker, app_session(LAPTOP), client_device=old)
    assert Reason.DEVICE_UNKNOWN in denied_for(check)
