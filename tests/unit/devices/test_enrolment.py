"""Enrolment tokens, enrolment and signed reports through the real services (SQLite)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.crypto import hash_token
from nevertrust.devices import (
    DeviceNotEnrolled,
    InvalidEnrolmentToken,
    InvalidPosture,
    InvalidPublicKey,
    ReportReplayed,
    ReportSignatureInvalid,
    ReportStale,
    State,
)
from nevertrust.errors import InvalidInput
from nevertrust.identity import UnknownUser
from nevertrust.store.tables import device_tokens, metadata
from tests.soft_device import SoftDevice, posture

from .conftest import Enrolled


def rows(svc: Services) -> dict[str, list[tuple[Any, ...]]]:
    with svc.db.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t))] for t in metadata.sorted_tables}


def device_events(svc: Services) -> list[ChangeEvent]:
    with svc.uow.read() as uow:
        return [e for _, e in uow.changes.since(0) if e.topic is Topic.DEVICE]


def actions(svc: Services) -> list[str]:
    with svc.uow.read() as uow:
        return [r.action for r in uow.audit.iterate() if r.action.startswith("devices:")]


def enrol_with(svc: Services, token: str, soft: SoftDevice | None = None, **kw: Any) -> str:
    soft = soft or SoftDevice()
    done = svc.device_enrolment.enrol(
        token=token,
        public_key_pem=kw.pop("public_key_pem", soft.public_pem),
        name=kw.pop("name", "laptop"),
        posture=kw.pop("posture", posture()),
        **kw,
    )
    return done.device.device_id


# Tokens


def test_a_token_is_stored_only_as_its_hash(svc: Services) -> None:
    issued = svc.device_enrolment.create_token("alice", actor="cli:root")
    assert issued.token.startswith("ntd_") and len(issued.token) > 40
    with svc.db.engine.connect() as conn:
        stored = conn.execute(select(device_tokens)).one()
    assert stored.token_hash == hash_token(issued.token)
    assert issued.token not in repr(rows(svc))


def test_a_token_enrols_one_device_only(svc: Services) -> None:
    token = svc.device_enrolment.create_token("alice", actor="cli:root").token
    enrol_with(svc, token)
    with pytest.raises(InvalidEnrolmentToken):
        enrol_with(svc, token)
    assert len(svc.devices.list_devices()) == 1


def test_a_token_expires(svc: Services, clock: FixedClock) -> None:
    token = svc.device_enrolment.create_token("alice", actor="cli:root").token
    clock.advance(timedelta(minutes=svc.settings.devices.enrolment_token_minutes))
    with pytest.raises(InvalidEnrolmentToken):
        enrol_with(svc, token)


def test_the_device_belongs_to_the_user_the_token_was_made_for(svc: Services) -> None:
    device_id = enrol_with(svc, svc.device_enrolment.create_token("bob", actor="cli:root").token)
    assert svc.devices.get(device_id).username == "bob"
    assert [d.device_id for d in svc.devices.list_devices(username="bob")] == [device_id]
    assert svc.devices.list_devices(username="alice") == []


def test_an_unknown_token_gets_the_same_answer_as_a_used_one(svc: Services) -> None:
    with pytest.raises(InvalidEnrolmentToken, match="unknown, used or expired"):
        enrol_with(svc, "ntd_" + "A" * 43)


def test_a_disabled_users_token_no_longer_enrols(svc: Services) -> None:
    token = svc.device_enrolment.create_token("alice", actor="cli:root").token
    svc.directory.set_enabled("alice", False, actor="cli:root")
    with pytest.raises(InvalidEnrolmentToken):
        enrol_with(svc, token)


def test_tokens_are_for_existing_enabled_people_only(svc: Services) -> None:
    with pytest.raises(UnknownUser):
        svc.device_enrolment.create_token("nobody", actor="cli:root")
    svc.service_accounts.create("ci-bot", owner="alice", actor="cli:root")
    with pytest.raises(InvalidInput, match="enabled people"):
        svc.device_enrolment.create_token("ci-bot", actor="cli:root")


# Enrolment


def test_enrolment_judges_the_posture_audits_and_announces(svc: Services) -> None:
    device_id = enrol_with(svc, svc.device_enrolment.create_token("alice", actor="cli:root").token)
    device = svc.devices.get(device_id)
    assert device.device_id.startswith("dev_") and len(device.device_id) == 20
    assert (device.state, device.reasons, device.managed) == (State.COMPLIANT, (), True)
    assert device_events(svc) == [ChangeEvent(Topic.DEVICE, device_id)]
    assert actions(svc)[-1] == Action.DEVICE_ENROLLED


def test_enrolment_without_a_posture_registers_the_device(svc: Services) -> None:
    token = svc.device_enrolment.create_token("alice", actor="cli:root").token
    device_id = enrol_with(svc, token, posture=None, ownership="personal")
    device = svc.devices.get(device_id)
    assert (device.state, device.reasons, device.platform) == (
        State.REGISTERED,
        ("posture-missing",),
        None,
    )
    assert not device.managed


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"public_key_pem": "not a key"}, InvalidPublicKey),
        ({"posture": posture(platform="plan9")}, InvalidPosture),
        ({"posture": {**posture(), "jailbroken": False}}, InvalidPosture),
        ({"name": ""}, InvalidInput),
        ({"name": "a\x00b"}, InvalidInput),
        ({"ownership": "borrowed"}, InvalidInput),
    ],
)
def test_bad_enrolment_input_stores_nothing_and_leaves_the_token_usable(
    svc: Services, change: dict[str, Any], error: type[Exception]
) -> None:
    token = svc.device_enrolment.create_token("alice", actor="cli:root").token
    before = rows(svc)
    with pytest.raises(error):
        enrol_with(svc, token, **change)
    assert rows(svc) == before
    enrol_with(svc, token)  # still one use left


# Reports


def test_a_signed_report_updates_posture_and_state(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    clock.advance(timedelta(minutes=5))
    outcome = svc.device_enrolment.report(
        device.device_id, device.soft.report(posture(firewall_active=False), at=clock.now())
    )
    assert outcome.state is State.COMPLIANT  # the default policy does not need a firewall
    outcome = svc.device_enrolment.report(
        device.device_id,
        device.soft.report(posture(disk_encrypted=False), at=clock.now() + timedelta(seconds=1)),
    )
    assert (outcome.state, outcome.reasons, outcome.compliant) == (
        State.NONCOMPLIANT,
        ("disk-not-encrypted",),
        False,
    )
    stored = svc.devices.get(device.device_id)
    assert stored.posture is not None and stored.posture["disk_encrypted"] is False
    assert stored.last_report_at == clock.now()
    assert actions(svc).count(Action.DEVICE_STATE_CHANGED) == 1


def test_refused_reports_store_nothing(svc: Services, clock: FixedClock, enrol: Any) -> None:
    device: Enrolled = enrol()
    first = device.soft.report(at=clock.now(), jti="first-report-1")
    svc.device_enrolment.report(device.device_id, first)
    before = rows(svc)
    refused = [
        (device.soft.report(at=clock.now(), key=SoftDevice().key), ReportSignatureInvalid),
        (first, ReportReplayed),
        (device.soft.report(at=clock.now() - timedelta(hours=1)), ReportStale),
        (
            device.soft.report(posture(platform="amiga"), at=clock.now() + timedelta(seconds=2)),
            InvalidPosture,
        ),  # fmt: skip
        (
            device.soft.report(posture(platform="windows"), at=clock.now() + timedelta(seconds=3)),
            InvalidPosture,
        ),
    ]
    for token, error in refused:
        with pytest.raises(error):
            svc.device_enrolment.report(device.device_id, token)
    assert rows(svc) == before


def test_a_quarantined_device_stays_quarantined_whatever_it_reports(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    svc.devices.quarantine(device.device_id, actor="cli:root")
    outcome = svc.device_enrolment.report(device.device_id, device.soft.report(at=clock.now()))
    assert outcome.state is State.QUARANTINED and not outcome.compliant
    assert outcome.reasons == ("quarantined",)
    assert svc.devices.get(device.device_id).state is State.QUARANTINED


def test_a_removed_devices_reports_are_refused(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    svc.devices.remove(device.device_id, actor="cli:root")
    with pytest.raises(DeviceNotEnrolled):
        svc.device_enrolment.report(device.device_id, device.soft.report(at=clock.now()))


def test_the_certificate_is_renewed_once_a_third_of_its_life_is_left(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    device: Enrolled = enrol()
    first = svc.devices.get(device.device_id)
    hours = svc.settings.devices.certificate_hours
    clock.advance(timedelta(hours=hours * 2 / 3) - timedelta(minutes=1))
    assert (
        svc.device_enrolment.report(
            device.device_id, device.soft.report(at=clock.now())
        ).certificate
        is None
    )
    clock.advance(timedelta(minutes=2))
    renewed = svc.device_enrolment.report(device.device_id, device.soft.report(at=clock.now()))
    assert renewed.certificate is not None
    assert renewed.certificate.not_after == clock.now() + timedelta(hours=hours)
    now = svc.devices.get(device.device_id)
    assert now.certificate_serial == renewed.certificate.serial != first.certificate_serial
    assert Action.DEVICE_CERTIFICATE_RENEWED in actions(svc)


def test_unchanged_reports_are_announced_often_enough_for_caches_of_the_report_time(
    svc: Services, clock: FixedClock, enrol: Any
) -> None:
    """Gateways judge staleness from the last report time in their cached view; reports
    that change nothing are announced about four times per stale period, never less."""
    device: Enrolled = enrol()
    stale_after = timedelta(hours=svc.settings.devices.stale_after_hours)
    announced = [clock.now()]  # enrolment
    seen = len(device_events(svc))
    for _ in range(int(stale_after * 1.5 / timedelta(minutes=30))):
        clock.advance(timedelta(minutes=30))
        svc.device_enrolment.report(device.device_id, device.soft.report(at=clock.now()))
        if len(device_events(svc)) > seen:
            seen = len(device_events(svc))
            announced.append(clock.now())
    gaps = [b - a for a, b in zip(announced, announced[1:], strict=False)]
    # 72 reports over 1.5 periods: about six announcements (and one certificate renewal).
    assert 5 <= len(gaps) <= 8
    assert max(gaps) <= stale_after / 4 + timedelta(minutes=30)
