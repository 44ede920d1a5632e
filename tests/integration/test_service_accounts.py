"""Service accounts and API keys on both backends, with a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from nevertrust.app import Services
from nevertrust.audit import Action, Outcome
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.errors import AlreadyExists, InvalidInput
from nevertrust.identity import InvalidCredentials, UnknownUser
from nevertrust.identity.api_keys import InvalidDuration, UnknownApiKey, UnknownScope, parse_key
from nevertrust.identity.models import UserKind
from nevertrust.identity.service_accounts import (
    InvalidOwner,
    KeyNotActive,
    NotAServiceAccount,
    ServiceAccountDisabled,
)

from ._support import PASSWORD, audit_records, changes, db_state

ROOT = "cli:root"


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor=ROOT, password=PASSWORD)
    any_services.service_accounts.create(
        "ci-bot", owner="alice", description="deploys from CI", actor=ROOT
    )
    return any_services


def issue(svc: Services, scopes: tuple[str, ...] = ("api:read",)) -> str:
    plaintext, _ = svc.service_accounts.issue_key("ci-bot", "deploy", scopes, actor=ROOT)
    return plaintext


def rejections(svc: Services) -> list[tuple[str, str, str]]:
    return [
        (r.target, r.reason, r.source)
        for r in audit_records(svc)
        if r.action == Action.API_KEY_REJECTED
    ]


def test_a_service_account_is_a_passwordless_user_with_an_owner(svc: Services) -> None:
    user = svc.directory.get_user("ci-bot")
    account = svc.service_accounts.get("ci-bot")

    assert (user.kind, user.password_hash, user.description) == (
        UserKind.SERVICE,
        None,
        "deploys from CI",
    )
    assert (account.owner, account.owner_problem, account.keys) == ("alice", None, ())
    created = [r for r in audit_records(svc) if r.action == Action.SERVICE_ACCOUNT_CREATED]
    assert [(r.actor, r.target) for r in created] == [(ROOT, "user:ci-bot")]
    assert ChangeEvent(Topic.USER, str(user.id)) in changes(svc)


def test_service_accounts_join_groups_like_people_and_appear_as_principals(svc: Services) -> None:
    svc.directory.add_group("deployers", actor=ROOT)
    svc.directory.set_membership("deployers", "ci-bot", True, actor=ROOT)

    assert svc.service_accounts.get("ci-bot").groups == ("deployers",)
    [principal] = [p for p in svc.directory.principals() if p.name == "ci-bot"]
    assert principal.groups == frozenset({"deployers"}) and principal.enabled


def test_a_service_account_can_never_get_a_password_or_sign_in(svc: Services) -> None:
    with pytest.raises(InvalidInput, match="service account: it has no password"):
        svc.directory.set_password("ci-bot", PASSWORD, actor=ROOT)
    with pytest.raises(InvalidInput, match="service account"):
        svc.directory.issue_setup_link_token("ci-bot", actor=ROOT)
    with pytest.raises(InvalidCredentials):
        svc.auth.login("ci-bot", PASSWORD, source_ip="192.0.2.1", user_agent="pytest")
    assert svc.directory.get_user("ci-bot").password_hash is None


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        ("nobody", "no such user"),
        ("ci-bot", "an owner must be a person"),
        ("bob", "is disabled"),
    ],
)
def test_the_owner_must_be_an_enabled_person(svc: Services, owner: str, message: str) -> None:
    svc.directory.add_user("bob", actor=ROOT)
    svc.directory.set_enabled("bob", False, actor=ROOT)
    before = db_state(svc)

    with pytest.raises(InvalidOwner, match=message):
        svc.service_accounts.create("other-bot", owner=owner, actor=ROOT)
    with pytest.raises(InvalidOwner, match=message):
        svc.service_accounts.set_owner("ci-bot", owner, actor=ROOT)

    assert db_state(svc) == before


def test_names_are_shared_with_people(svc: Services) -> None:
    with pytest.raises(AlreadyExists):
        svc.service_accounts.create("alice", owner="alice", actor=ROOT)
    with pytest.raises(NotAServiceAccount):
        svc.service_accounts.issue_key("alice", "k", ["api:read"], actor=ROOT)


def test_set_owner_hands_the_account_over_and_is_audited(svc: Services) -> None:
    svc.directory.add_user("bob", actor=ROOT)

    account = svc.service_accounts.set_owner("ci-bot", "bob", actor=ROOT)

    assert account.owner == "bob"
    [record] = [r for r in audit_records(svc) if r.action == Action.SERVICE_ACCOUNT_OWNER_SET]
    assert record.target == "user:ci-bot"
    assert '"owner":"bob"' in record.details and '"previous":"alice"' in record.details


def test_an_issued_key_authenticates_and_only_its_hash_is_stored(
    svc: Services, clock: FixedClock
) -> None:
    plaintext, record = svc.service_accounts.issue_key(
        "ci-bot", "deploy", ["api:write", "api:read"], actor=ROOT
    )

    parsed = parse_key(plaintext)
    assert parsed is not None and parsed.prefix == record.prefix
    assert record.scopes == ("api:read", "api:write")
    assert record.expires_at == clock.now() + timedelta(days=90)
    assert record.created_by == ROOT
    everything = repr(db_state(svc))
    assert parsed.secret not in everything and record.prefix in everything
    [issued] = [r for r in audit_records(svc) if r.action == Action.API_KEY_ISSUED]
    assert record.prefix in issued.details and parsed.secret not in issued.details

    found = svc.service_accounts.authenticate(plaintext, source_ip="192.0.2.9")

    assert found is not None
    user, key = found
    assert (user.name, key.prefix) == ("ci-bot", record.prefix)


def test_issue_refuses_unknown_scopes_long_lifetimes_and_disabled_accounts(
    svc: Services,
) -> None:
    before = db_state(svc)
    with pytest.raises(UnknownScope, match="unknown scope 'admin'"):
        svc.service_accounts.issue_key("ci-bot", "k", ["admin"], actor=ROOT)
    with pytest.raises(InvalidDuration, match="at most 365 days"):
        svc.service_accounts.issue_key("ci-bot", "k", ["api:read"], timedelta(days=400), actor=ROOT)
    with pytest.raises(UnknownUser):
        svc.service_accounts.issue_key("ghost", "k", ["api:read"], actor=ROOT)
    assert db_state(svc) == before

    svc.service_accounts.set_enabled("ci-bot", False, actor=ROOT)
    with pytest.raises(ServiceAccountDisabled):
        svc.service_accounts.issue_key("ci-bot", "k", ["api:read"], actor=ROOT)


def test_a_custom_lifetime_sets_the_expiry(svc: Services, clock: FixedClock) -> None:
    _, record = svc.service_accounts.issue_key(
        "ci-bot", "short", ["api:read"], timedelta(days=30), actor=ROOT
    )
    assert record.expires_at == clock.now() + timedelta(days=30)


def test_every_bad_key_is_refused_and_audited_without_its_secret(
    svc: Services, clock: FixedClock
) -> None:
    good = issue(svc)
    parsed = parse_key(good)
    assert parsed is not None
    wrong = good[:-1] + ("A" if good[-1] != "A" else "B")
    unknown = "ntk_" + "z" * 10 + "_" + parsed.secret

    for candidate in ("garbage", "ntk_short", unknown, wrong):
        assert svc.service_accounts.authenticate(candidate, source_ip="192.0.2.9") is None

    assert rejections(svc) == [
        ("api-key", "malformed", "192.0.2.9"),
        ("api-key", "malformed", "192.0.2.9"),
        ("api-key:zzzzzzzzzz", "unknown-key", "192.0.2.9"),
        (f"api-key:{parsed.prefix}", "wrong-secret", "192.0.2.9"),
    ]
    assert parsed.secret not in repr(audit_records(svc))


def test_a_key_stops_at_its_expiry(svc: Services, clock: FixedClock) -> None:
    plaintext, _ = svc.service_accounts.issue_key(
        "ci-bot", "deploy", ["api:read"], timedelta(days=30), actor=ROOT
    )
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert svc.service_accounts.authenticate(plaintext) is not None

    clock.advance(timedelta(seconds=1))

    assert svc.service_accounts.authenticate(plaintext) is None
    assert rejections(svc)[-1][1] == "expired"
    [key] = svc.service_accounts.list_keys("ci-bot")
    assert (key.status, key.stale) == ("expired", True)


def test_revoking_stops_the_key_at_once_everywhere(
    svc: Services, open_peer: Callable[[], Services]
) -> None:
    plaintext = issue(svc)
    parsed = parse_key(plaintext)
    assert parsed is not None
    peer = open_peer()
    assert peer.service_accounts.authenticate(plaintext) is not None

    assert svc.service_accounts.revoke_key(parsed.prefix, actor=ROOT) is True
    assert svc.service_accounts.revoke_key(parsed.prefix, actor=ROOT) is False

    assert peer.service_accounts.authenticate(plaintext) is None
    assert svc.service_accounts.authenticate(plaintext) is None
    assert [r[1] for r in rejections(svc)] == ["revoked", "revoked"]
    revoked = [r for r in audit_records(svc) if r.action == Action.API_KEY_REVOKED]
    assert len(revoked) == 1 and revoked[0].outcome == Outcome.SUCCESS
    with pytest.raises(UnknownApiKey):
        svc.service_accounts.revoke_key("nosuchkeyx", actor=ROOT)


def test_disabling_the_account_stops_its_keys(svc: Services) -> None:
    plaintext = issue(svc)

    svc.service_accounts.set_enabled("ci-bot", False, actor=ROOT)

    assert svc.service_accounts.authenticate(plaintext) is None
    assert rejections(svc)[-1][1] == "account-disabled"
    svc.service_accounts.set_enabled("ci-bot", True, actor=ROOT)
    assert svc.service_accounts.authenticate(plaintext) is not None


def test_rotation_gives_a_new_key_and_ends_the_old_one_after_the_grace(
    svc: Services, clock: FixedClock
) -> None:
    old_plain, old = svc.service_accounts.issue_key(
        "ci-bot", "deploy", ["api:read", "api:write"], timedelta(days=60), actor=ROOT
    )
    clock.advance(timedelta(days=10))

    new_plain, new = svc.service_accounts.rotate_key(old.prefix, timedelta(hours=2), actor=ROOT)

    assert (new.name, new.scopes) == (old.name, old.scopes)
    assert new.prefix != old.prefix
    assert new.expires_at == clock.now() + timedelta(days=60)  # the old key's lifetime
    assert svc.service_accounts.key(old.prefix).expires_at == clock.now() + timedelta(hours=2)
    assert svc.service_accounts.authenticate(old_plain) is not None  # grace
    assert svc.service_accounts.authenticate(new_plain) is not None
    [rotated] = [r for r in audit_records(svc) if r.action == Action.API_KEY_ROTATED]
    assert new.prefix in rotated.details and old.prefix in rotated.details

    clock.advance(timedelta(hours=2))

    assert svc.service_accounts.authenticate(old_plain) is None
    assert svc.service_accounts.authenticate(new_plain) is not None
    views = {k.prefix: k for k in svc.service_accounts.list_keys("ci-bot")}
    # Retired by rotation: expired but dealt with, so not flagged stale.
    assert (views[old.prefix].status, views[old.prefix].stale) == ("expired", False)
    with pytest.raises(KeyNotActive, match="is expired"):
        svc.service_accounts.rotate_key(old.prefix, actor=ROOT)


def test_rotation_never_extends_the_old_key_and_defaults_to_a_day(
    svc: Services, clock: FixedClock
) -> None:
    _, short = svc.service_accounts.issue_key(
        "ci-bot", "deploy", ["api:read"], timedelta(hours=5), actor=ROOT
    )
    _, other = svc.service_accounts.issue_key("ci-bot", "backup", ["api:read"], actor=ROOT)

    svc.service_accounts.rotate_key(short.prefix, actor=ROOT)
    svc.service_accounts.rotate_key(other.prefix, actor=ROOT)

    assert svc.service_accounts.key(short.prefix).expires_at == short.expires_at
    assert svc.service_accounts.key(other.prefix).expires_at == clock.now() + timedelta(days=1)


def test_a_revoked_key_cannot_be_rotated(svc: Services) -> None:
    _, record = svc.service_accounts.issue_key("ci-bot", "deploy", ["api:read"], actor=ROOT)
    svc.service_accounts.revoke_key(record.prefix, actor=ROOT)

    with pytest.raises(KeyNotActive, match="is revoked: issue a new key instead"):
        svc.service_accounts.rotate_key(record.prefix, actor=ROOT)


def test_last_use_is_written_at_most_once_a_minute(svc: Services, clock: FixedClock) -> None:
    plaintext = issue(svc)
    first = clock.now()

    for _ in range(5):
        assert svc.service_accounts.authenticate(plaintext) is not None
        clock.advance(timedelta(seconds=10))
    [key] = svc.service_accounts.list_keys("ci-bot")
    assert key.last_used_at == first

    clock.advance(timedelta(seconds=10))  # 60 s after the first use
    svc.service_accounts.authenticate(plaintext)

    [key] = svc.service_accounts.list_keys("ci-bot")
    assert key.last_used_at == first + timedelta(seconds=60)


def test_last_use_throttle_holds_across_processes(
    svc: Services, clock: FixedClock, open_peer: Callable[[], Services]
) -> None:
    plaintext = issue(svc)
    first = clock.now()
    svc.service_accounts.authenticate(plaintext)
    clock.advance(timedelta(seconds=30))
    peer = open_peer()

    peer.service_accounts.authenticate(plaintext)

    [key] = svc.service_accounts.list_keys("ci-bot")
    assert key.last_used_at == first


def test_inventory_flags_unused_keys_as_stale_after_30_days(
    svc: Services, clock: FixedClock
) -> None:
    used = issue(svc)
    _, idle = svc.service_accounts.issue_key("ci-bot", "idle", ["api:read"], actor=ROOT)
    clock.advance(timedelta(days=29))
    svc.service_accounts.authenticate(used)
    clock.advance(timedelta(days=1))

    [account] = svc.service_accounts.inventory()

    assert account.stale_keys == (idle.prefix,)
    assert {k.name: k.stale for k in account.keys} == {"deploy": False, "idle": True}
