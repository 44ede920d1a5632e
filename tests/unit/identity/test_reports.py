"""Identity report arithmetic, from plain records (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nevertrust.identity.api_keys import hash_secret
from nevertrust.identity.models import ApiKeyRecord, UserKind, UserRecord
from nevertrust.identity.reports import identity_report

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def person(
    name: str,
    *,
    enabled: bool = True,
    age_days: int = 100,
    last_login_days: int | None = 1,
) -> UserRecord:
    return UserRecord(
        id=next(_ids),
        name=name,
        display_name="",
        email="",
        password_hash="x",
        enabled=enabled,
        created_at=NOW - timedelta(days=age_days),
        updated_at=NOW,
        last_login_at=None if last_login_days is None else NOW - timedelta(days=last_login_days),
    )


def machine(name: str, owner: UserRecord | None, *, enabled: bool = True) -> UserRecord:
    return UserRecord(
        id=next(_ids),
        name=name,
        display_name="",
        email="",
        password_hash=None,
        enabled=enabled,
        created_at=NOW - timedelta(days=100),
        updated_at=NOW,
        kind=UserKind.SERVICE,
        owner_id=owner.id if owner else None,
    )


def key(owner: UserRecord, prefix: str, *, last_used_days: int | None) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=next(_ids),
        user_id=owner.id,
        prefix=prefix,
        secret_hash=hash_secret(prefix),
        name=prefix,
        scopes=("api:read",),
        created_at=NOW - timedelta(days=60),
        created_by="cli:root",
        expires_at=NOW + timedelta(days=30),
        last_used_at=None if last_used_days is None else NOW - timedelta(days=last_used_days),
        revoked_at=None,
    )


def test_percentages_count_enabled_people_only() -> None:
    alice, bob, carol, dave = person("alice"), person("bob"), person("carol"), person("dave")
    gone = person("gone", enabled=False)
    robot = machine("robot", alice)

    report = identity_report(
        [alice, bob, carol, dave, gone, robot],
        [],
        totp_user_ids={alice.id, bob.id, gone.id, robot.id},
        webauthn_user_ids={bob.id, carol.id},
        now=NOW,
    )

    assert report.people == 4
    assert report.people_with_mfa == 3  # alice (TOTP), bob (both), carol (passkey)
    assert report.mfa_percent == 75.0
    assert report.people_with_phishing_resistant_mfa == 2
    assert report.phishing_resistant_percent == 50.0
    assert report.people_without_mfa == ("dave",)


def test_percentages_round_to_one_decimal_and_are_null_without_people() -> None:
    a, b, c = person("a"), person("b"), person("c")
    report = identity_report([a, b, c], [], totp_user_ids={a.id}, webauthn_user_ids=(), now=NOW)
    assert report.mfa_percent == 33.3
    assert report.to_json()["phishing_resistant_percent"] == 0.0

    empty = identity_report([], [], totp_user_ids=(), webauthn_user_ids=(), now=NOW)
    assert (empty.people, empty.mfa_percent, empty.phishing_resistant_percent) == (0, None, None)


@pytest.mark.parametrize(
    ("age_days", "last_login_days", "inactive"),
    [
        (100, 44, False),
        (100, 45, True),
        (100, None, True),  # never signed in, account 100 days old
        (44, None, False),  # never signed in but created recently
        (45, None, True),
    ],
)
def test_inactive_after_45_days_without_sign_in(
    age_days: int, last_login_days: int | None, inactive: bool
) -> None:
    user = person("u", age_days=age_days, last_login_days=last_login_days)
    report = identity_report([user], [], totp_user_ids=(), webauthn_user_ids=(), now=NOW)
    assert [p.name for p in report.inactive_people] == (["u"] if inactive else [])


def test_inactive_threshold_is_configurable_and_reports_days() -> None:
    user = person("u", last_login_days=20)
    report = identity_report(
        [user], [], totp_user_ids=(), webauthn_user_ids=(), now=NOW, inactive_days=14
    )
    [entry] = report.inactive_people
    assert (entry.days_inactive, report.inactive_days) == (20, 14)
    assert report.to_json()["inactive_people"][0]["days_inactive"] == 20


def test_service_accounts_without_an_answerable_owner_say_why() -> None:
    alice = person("alice")
    left = person("left", enabled=False)
    ok = machine("ok", alice)
    orphan = machine("orphan", None)
    abandoned = machine("abandoned", left)
    nested = machine("nested", ok)
    off = machine("off", None, enabled=False)  # disabled: not a risk, left out

    report = identity_report(
        [alice, left, ok, orphan, abandoned, nested, off],
        [],
        totp_user_ids=(),
        webauthn_user_ids=(),
        now=NOW,
    )

    assert report.service_accounts == 4
    assert [(a.name, a.owner, a.problem) for a in report.service_accounts_without_owner] == [
        ("orphan", None, "no-owner"),
        ("abandoned", "left", "owner-disabled"),
        ("nested", "ok", "owner-not-a-person"),
    ]
    assert report.people == 1  # service accounts are not people


def test_service_accounts_with_stale_keys_list_the_key_prefixes() -> None:
    alice = person("alice")
    busy, idle = machine("busy", alice), machine("idle", alice)
    keys = [
        key(busy, "aaaaaaaaaa", last_used_days=1),
        key(idle, "bbbbbbbbbb", last_used_days=31),
        key(idle, "cccccccccc", last_used_days=None),  # created 60 days ago, never used
        key(idle, "dddddddddd", last_used_days=2),
    ]

    report = identity_report(
        [alice, busy, idle], keys, totp_user_ids=(), webauthn_user_ids=(), now=NOW
    )

    assert report.to_json()["service_accounts_with_stale_keys"] == [
        {"name": "idle", "owner": "alice", "stale_keys": ["bbbbbbbbbb", "cccccccccc"]}
    ]


def test_json_field_names_are_the_documented_ones() -> None:
    report = identity_report([], [], totp_user_ids=(), webauthn_user_ids=(), now=NOW)
    assert list(report.to_json()) == [
        "generated_at",
        "inactive_days",
        "people",
        "people_with_mfa",
        "mfa_percent",
        "people_with_phishing_resistant_mfa",
        "phishing_resistant_percent",
        "people_without_mfa",
        "inactive_people",
        "service_accounts",
        "service_accounts_without_owner",
        "service_accounts_with_stale_keys",
    ]
