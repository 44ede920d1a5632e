"""Authenticator apps on both backends, with codes made by the real oathtool binary."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from nevertrust.app import Services, build_services
from nevertrust.audit import Action, Outcome
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock, SystemClock
from nevertrust.crypto import DecryptionFailed
from nevertrust.identity import (
    InvalidOtp,
    TotpAlreadyEnrolled,
    TotpNotEnrolled,
    UserRecord,
)
from nevertrust.store.tables import totp_credentials

from ._support import PASSWORD, audit_records, changes, last_change_id

STEP = timedelta(seconds=30)


def oathtool(secret: str, at: datetime | None = None) -> str:
    """The code an authenticator shows for ``secret``: now, or at ``at``."""
    when = [] if at is None else ["-N", f"@{int(at.timestamp())}"]
    result = subprocess.run(
        ["oathtool", "--totp", "-b", *when, secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    code = result.stdout.strip()
    assert len(code) == 6 and code.isdigit(), result.stdout
    return code


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="admin:root", password=PASSWORD)
    any_services.directory.add_user("bob", actor="admin:root", password=PASSWORD)
    return any_services


def user(svc: Services, name: str = "alice") -> UserRecord:
    return svc.directory.get_user(name)


def enrolled(svc: Services, clock: FixedClock, name: str = "alice") -> str:
    """Enrol and confirm through the self-service path; returns the secret."""
    enrolment = svc.totp.begin_enrolment(name, actor=f"user:{name}")
    svc.totp.confirm(name, oathtool(enrolment.secret, clock.now()))
    return enrolment.secret


def test_self_enrolment_then_oathtool_codes_sign_in_once_each(
    svc: Services, clock: FixedClock
) -> None:
    enrolment = svc.totp.begin_enrolment("alice", actor="user:alice")
    alice = user(svc)
    # Not a factor until confirmed: even a right code is refused.
    assert not svc.totp.verify(alice.id, oathtool(enrolment.secret, clock.now()))
    assert svc.totp.status("alice")[0].totp_pending

    svc.totp.confirm("alice", oathtool(enrolment.secret, clock.now()))
    # The confirming code is spent: it cannot also be used to sign in.
    assert not svc.totp.verify(alice.id, oathtool(enrolment.secret, clock.now()))
    clock.advance(STEP)
    code = oathtool(enrolment.secret, clock.now())

    assert svc.totp.verify(alice.id, code, source_ip="192.0.2.7")
    assert not svc.totp.verify(alice.id, code, source_ip="192.0.2.7")  # replayed

    records = [r for r in audit_records(svc) if r.action.startswith("identity:mfa:")]
    assert [(r.action, r.outcome, r.reason) for r in records] == [
        (Action.MFA_ENROLMENT_STARTED, Outcome.SUCCESS, ""),
        (Action.MFA_FAILED, Outcome.FAILURE, "not-enrolled"),
        (Action.MFA_ENROLLED, Outcome.SUCCESS, ""),
        (Action.MFA_FAILED, Outcome.FAILURE, "replayed"),
        (Action.MFA_VERIFIED, Outcome.SUCCESS, ""),
        (Action.MFA_FAILED, Outcome.FAILURE, "replayed"),
    ]
    assert records[-1].source == "192.0.2.7"
    assert records[-1].actor == "user:alice"
    assert all(enrolment.secret not in (r.details + r.reason) for r in audit_records(svc))


def test_codes_of_the_neighbouring_steps_count_but_not_further(
    svc: Services, clock: FixedClock
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    alice = user(svc)
    now = clock.now()

    for far in (-2, 2, 3):
        assert not svc.totp.verify(alice.id, oathtool(secret, now + far * STEP))
    assert svc.totp.verify(alice.id, oathtool(secret, now - STEP))  # a slow phone
    assert svc.totp.verify(alice.id, oathtool(secret, now + STEP))  # a fast one
    # Step t+1 is spent, so the current step's code is now older than the last one used.
    assert not svc.totp.verify(alice.id, oathtool(secret, now))
    assert [r.reason for r in audit_records(svc) if r.action == Action.MFA_FAILED] == [
        "bad-code",
        "bad-code",
        "bad-code",
        "replayed",
    ]


def test_a_replica_on_the_real_clock_accepts_what_oathtool_shows_now(
    svc: Services, fast_passwords: object
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    replica = build_services(svc.settings, clock=SystemClock(), migrate=False)
    try:
        code = oathtool(secret)
        assert replica.totp.verify(user(svc).id, code)
        assert not replica.totp.verify(user(svc).id, code)
    finally:
        replica.close()


def test_one_code_raced_by_many_verifiers_on_two_replicas_wins_once(
    svc: Services, clock: FixedClock, open_peer: Callable[[], Services]
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    alice_id = user(svc).id
    code = oathtool(secret, clock.now())
    replicas = [open_peer(), open_peer()]
    start = threading.Barrier(8)
    results: list[bool] = []

    def attempt(replica: Services) -> None:
        start.wait()
        results.append(replica.totp.verify(alice_id, code))

    threads = [threading.Thread(target=attempt, args=(replicas[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(results) == [False] * 7 + [True]


def test_confirming_needs_a_right_code_and_a_pending_enrolment(
    svc: Services, clock: FixedClock
) -> None:
    with pytest.raises(TotpNotEnrolled):
        svc.totp.confirm("alice", "123456")
    enrolment = svc.totp.begin_enrolment("alice", actor="user:alice")
    wrong = oathtool(enrolment.secret, clock.now() + 5 * STEP)

    with pytest.raises(InvalidOtp) as info:
        svc.totp.confirm("alice", wrong)

    assert info.value.details == {"field": "otp"}
    assert wrong not in info.value.message
    assert not svc.totp.status("alice")[0].totp


def test_starting_over_keeps_a_working_authenticator(svc: Services, clock: FixedClock) -> None:
    secret = enrolled(svc, clock)

    with pytest.raises(TotpAlreadyEnrolled):
        svc.totp.begin_enrolment("alice", actor="user:alice")

    clock.advance(STEP)
    assert svc.totp.verify(user(svc).id, oathtool(secret, clock.now()))


def test_an_unconfirmed_enrolment_can_be_shown_again_or_restarted(svc: Services) -> None:
    first = svc.totp.begin_enrolment("alice", actor="user:alice")
    assert svc.totp.pending_enrolment("alice") == first

    second = svc.totp.begin_enrolment("alice", actor="user:alice")

    assert second.secret != first.secret
    assert svc.totp.pending_enrolment("alice") == second
    assert svc.totp.pending_enrolment("bob") is None


def test_the_enrolment_uri_and_qr_code_are_what_authenticator_apps_expect(
    svc: Services,
) -> None:
    enrolment = svc.totp.begin_enrolment("alice", actor="user:alice")
    uri = urlsplit(enrolment.uri)
    query = parse_qs(uri.query)

    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/NeverTrust:alice")
    assert query["secret"] == [enrolment.secret]
    assert query["issuer"] == ["NeverTrust"]
    assert len(enrolment.secret) == 32  # 160 bits of base32
    # Inline SVG markup, nothing the portal's CSP would block (no data: URL, no style).
    assert enrolment.qr_svg.startswith("<svg")
    assert "data:" not in enrolment.qr_svg
    assert "style" not in enrolment.qr_svg
    assert "<script" not in enrolment.qr_svg


def test_the_secret_is_stored_sealed_and_bound_to_its_user(
    svc: Services, clock: FixedClock
) -> None:
    secret = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    svc.totp.enroll_confirmed("bob", actor="cli:root")
    alice, bob = user(svc, "alice"), user(svc, "bob")
    with svc.db.engine.begin() as conn:
        rows = {r.user_id: bytes(r.secret_enc) for r in conn.execute(select(totp_credentials))}
        assert secret.encode() not in rows[alice.id]
        # Someone with database access copies alice's sealed secret onto bob's row.
        conn.execute(
            update(totp_credentials)
            .where(totp_credentials.c.user_id == bob.id)
            .values(secret_enc=rows[alice.id])
        )

    with pytest.raises(DecryptionFailed):
        svc.totp.verify(bob.id, oathtool(secret, clock.now()))


def test_admin_enrolment_replaces_the_old_app_and_announces_the_change(
    svc: Services, clock: FixedClock
) -> None:
    old = enrolled(svc, clock)
    mark = last_change_id(svc)

    new = svc.totp.enroll_confirmed("alice", actor="cli:root").secret
    clock.advance(STEP)

    assert not svc.totp.verify(user(svc).id, oathtool(old, clock.now()))
    assert svc.totp.verify(user(svc).id, oathtool(new, clock.now()))
    assert changes(svc, after=mark) == [ChangeEvent(Topic.USER, str(user(svc).id))]
    enrolled_records = [r for r in audit_records(svc) if r.action == Action.MFA_ENROLLED]
    assert [(r.actor, r.target) for r in enrolled_records] == [
        ("user:alice", "user:alice"),
        ("cli:root", "user:alice"),
    ]
    assert '"replaced":true' in enrolled_records[-1].details.replace(" ", "")


def test_removing_the_app_stops_its_codes(svc: Services, clock: FixedClock) -> None:
    secret = enrolled(svc, clock)
    mark = last_change_id(svc)

    assert svc.totp.remove("alice", actor="cli:root")
    assert not svc.totp.remove("alice", actor="cli:root")
    clock.advance(STEP)

    assert not svc.totp.verify(user(svc).id, oathtool(secret, clock.now()))
    assert changes(svc, after=mark) == [ChangeEvent(Topic.USER, str(user(svc).id))]
    assert [r.actor for r in audit_records(svc) if r.action == Action.MFA_REMOVED] == ["cli:root"]
    assert svc.totp.status("alice")[0].totp is False


def test_status_lists_each_persons_factors(svc: Services, clock: FixedClock) -> None:
    enrolled(svc, clock, "alice")
    svc.recovery_codes.generate("alice", actor="cli:root")
    svc.totp.begin_enrolment("bob", actor="user:bob")

    found = {s.user: s for s in svc.totp.status()}

    assert (found["alice"].totp, found["alice"].recovery_codes, found["alice"].passkeys) == (
        True,
        10,
        0,
    )
    assert found["alice"].totp_confirmed_at == clock.now()
    assert (found["bob"].totp, found["bob"].totp_pending, found["bob"].recovery_codes) == (
        False,
        True,
        0,
    )


def test_groups_can_require_a_second_factor(svc: Services) -> None:
    svc.directory.add_group("finance", actor="cli:root")
    mark = last_change_id(svc)

    group = svc.directory.set_group_mfa_required("finance", True, actor="cli:root")
    again = svc.directory.set_group_mfa_required("finance", True, actor="cli:root")

    assert group.mfa_required and again.mfa_required
    assert changes(svc, after=mark) == [ChangeEvent(Topic.GROUP, "finance")]
    records = [r for r in audit_records(svc) if r.action == Action.GROUP_MFA_REQUIRED]
    assert [(r.target, r.details) for r in records] == [("group:finance", '{"required":true}')]

    lifted = svc.directory.set_group_mfa_required("finance", False, actor="cli:root")

    assert not lifted.mfa_required
    assert not [g for g in svc.directory.list_groups() if g.mfa_required]
