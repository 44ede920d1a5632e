"""Ban subjects: one spelling per name and address, whoever writes it (login, CLI, API)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nevertrust.identity.regulation import (
    InvalidBanSubject,
    Limit,
    ip_subject,
    parse_subject,
    user_subject,
)
from nevertrust.regulation_storage import policy_from
from nevertrust.settings import RegulationSettings


@pytest.mark.parametrize("typed", ["alice", "Alice", "  ALICE ", "aLiCe\t"])
def test_a_user_name_is_counted_as_typed_but_trimmed_and_lower_cased(typed: str) -> None:
    assert user_subject(typed) == "user:alice"


def test_absurdly_long_names_share_one_subject_of_64_characters() -> None:
    subject = user_subject("x" * 10_000)
    assert subject == "user:" + "x" * 64
    assert user_subject("x" * 64 + "y") == subject


def test_an_empty_name_still_has_a_subject() -> None:
    assert user_subject("   ") == "user:-"


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        ("192.0.2.7", "ip:192.0.2.7"),
        (" 192.0.2.7 ", "ip:192.0.2.7"),
        # IPv4 reached over an IPv6 socket is the same client.
        ("::ffff:192.0.2.7", "ip:192.0.2.7"),
        # A subscriber usually holds a whole /64: hopping inside it is one subject.
        ("2001:db8:1:2::1", "ip:2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64"),
        ("[2001:db8:1:2::9]", "ip:2001:db8:1:2::/64"),
        ("fe80::1%eth0", "ip:fe80::/64"),
        # Not an address (a test client's name) or nothing: still regulated, as written.
        ("testclient", "ip:testclient"),
        ("", "ip:unknown"),
    ],
)
def test_source_addresses_are_normalised(source: str, subject: str) -> None:
    assert ip_subject(source) == subject


def test_neighbouring_ipv6_networks_are_different_subjects() -> None:
    assert ip_subject("2001:db8:1:2::1") != ip_subject("2001:db8:1:3::1")


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("user:alice", "user:alice"),
        ("user:Alice ", "user:alice"),
        ("USER:alice", "user:alice"),
        ("ip:192.0.2.7", "ip:192.0.2.7"),
        ("ip:::ffff:192.0.2.7", "ip:192.0.2.7"),
        ("ip:2001:db8:1:2::5", "ip:2001:db8:1:2::/64"),
        # What `bans list` prints can be pasted back.
        ("ip:2001:db8:1:2::/64", "ip:2001:db8:1:2::/64"),
    ],
)
def test_admin_subjects_are_read_in_the_stored_spelling(text: str, subject: str) -> None:
    assert parse_subject(text) == subject


@pytest.mark.parametrize(
    "text",
    ["alice", "user:", "ip:", "group:admins", "ip:10.0.0.0/8", "ip:192.0.2.7/64", ":alice"],
)
def test_admin_subjects_that_mean_nothing_are_refused(text: str) -> None:
    with pytest.raises(InvalidBanSubject) as caught:
        parse_subject(text)
    assert caught.value.code == "invalid-ban-subject"
    assert caught.value.http_status == 400
    assert repr(text) in caught.value.message


def test_defaults_follow_authelia() -> None:
    policy = policy_from(RegulationSettings())

    assert policy.enabled
    assert policy.user == Limit(
        max_retries=3, find_time=timedelta(minutes=2), ban_time=timedelta(minutes=5)
    )
    assert policy.ip == Limit(
        max_retries=20, find_time=timedelta(minutes=5), ban_time=timedelta(minutes=15)
    )
    assert policy.limit_for("user:alice") is policy.user
    assert policy.limit_for("ip:192.0.2.7") is policy.ip


@pytest.mark.parametrize(
    ("retries", "find"), [(0, timedelta(minutes=1)), (3, timedelta(milliseconds=500))]
)
def test_a_limit_that_could_never_count_is_refused(retries: int, find: timedelta) -> None:
    with pytest.raises(ValueError, match="max_retries >= 1"):
        Limit(max_retries=retries, find_time=find, ban_time=timedelta(minutes=1))
