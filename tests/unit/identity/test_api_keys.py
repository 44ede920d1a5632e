"""API keys: the format round-trips, any change to a key breaks it, scopes and lifetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.identity import api_keys as keys
from nevertrust.identity.models import ApiKeyRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_PREFIXES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=10, max_size=10)
_SECRETS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    min_size=43,
    max_size=43,
)


def _record(**changes: object) -> ApiKeyRecord:
    fields: dict[str, object] = {
        "id": 1,
        "user_id": 7,
        "prefix": "abcdefghij",
        "secret_hash": keys.hash_secret("s"),
        "name": "deploy",
        "scopes": ("api:read",),
        "created_at": NOW - timedelta(days=1),
        "created_by": "cli:root",
        "expires_at": NOW + timedelta(days=89),
        "last_used_at": None,
        "revoked_at": None,
    }
    fields.update(changes)
    return ApiKeyRecord(**fields)  # type: ignore[arg-type]


def test_a_new_key_reads_ntk_prefix_secret_and_parses_back() -> None:
    prefix, secret = keys.new_prefix(), keys.new_secret()
    text = keys.format_key(prefix, secret)

    assert re.fullmatch(r"ntk_[a-z2-7]{10}_[A-Za-z0-9_-]{43}", text)
    assert keys.parse_key(text) == keys.ParsedKey(prefix=prefix, secret=secret)


def test_new_prefixes_and_secrets_do_not_repeat() -> None:
    assert len({keys.new_prefix() for _ in range(200)}) == 200
    assert len({keys.new_secret() for _ in range(200)}) == 200


@given(_PREFIXES, _SECRETS)
def test_parse_inverts_format(prefix: str, secret: str) -> None:
    assert keys.parse_key(keys.format_key(prefix, secret)) == keys.ParsedKey(prefix, secret)


@given(_PREFIXES, _SECRETS, st.data())
def test_any_altered_character_fails_parsing_or_the_hash(
    prefix: str, secret: str, data: st.DataObject
) -> None:
    original = keys.format_key(prefix, secret)
    stored = keys.hash_secret(secret)
    position = data.draw(st.integers(0, len(original) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != original[position]))
    altered = original[:position] + replacement + original[position + 1 :]

    parsed = keys.parse_key(altered)

    # Either the key no longer parses, or it names another key, or its secret no longer matches.
    assert (
        parsed is None or parsed.prefix != prefix or not keys.secret_matches(parsed.secret, stored)
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ntk_",
        "ntk_abcdefghij_",
        "ntk_abcdefghij_" + "a" * 42,  # secret one short
        "ntk_abcdefghij_" + "a" * 44,  # one long
        "ntk_ABCDEFGHIJ_" + "a" * 43,  # prefix outside the alphabet
        "ntk_abcdefgh01_" + "a" * 43,
        "xtk_abcdefghij_" + "a" * 43,
        " ntk_abcdefghij_" + "a" * 43,
        "ntk_abcdefghij_" + "a" * 42 + "=",
    ],
)
def test_malformed_keys_parse_to_none(text: str) -> None:
    assert keys.parse_key(text) is None


def test_only_the_hash_of_the_secret_is_kept_and_it_is_sha256() -> None:
    secret = keys.new_secret()
    stored = keys.hash_secret(secret)

    assert re.fullmatch(r"[0-9a-f]{64}", stored) and secret not in stored
    assert keys.secret_matches(secret, stored)
    assert not keys.secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)


def test_parsed_key_repr_hides_the_secret() -> None:
    parsed = keys.ParsedKey(prefix="abcdefghij", secret="topsecretvalue")
    assert "topsecretvalue" not in repr(parsed) and "abcdefghij" in repr(parsed)


def test_scopes_are_checked_deduplicated_and_ordered() -> None:
    assert keys.check_scopes(["api:write", "api:read", "api:write"]) == ("api:read", "api:write")


@pytest.mark.parametrize("scopes", [["admin"], ["api:read", "api:delete"], []])
def test_unknown_or_missing_scopes_are_refused_naming_the_choices(scopes: list[str]) -> None:
    with pytest.raises(keys.UnknownScope) as info:
        keys.check_scopes(scopes)
    assert "api:read, api:write" in info.value.message
    assert info.value.code == "unknown-scope"


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        (("api:read",), "GET", True),
        (("api:read",), "HEAD", True),
        (("api:read",), "POST", False),
        (("api:read",), "DELETE", False),
        (("api:write",), "POST", True),
        (("api:write",), "GET", True),
        ((), "GET", False),
    ],
)
def test_read_scope_allows_safe_methods_and_write_allows_all(
    scopes: tuple[str, ...], method: str, allowed: bool
) -> None:
    assert keys.scope_allows(scopes, method) is allowed


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("24h", timedelta(hours=24)), ("15m", timedelta(minutes=15))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert keys.parse_duration(text, field="expires_in") == expected


@pytest.mark.parametrize("text", ["30", "d", "1w", "-1d", "never", "1.5d"])
def test_bad_durations_name_the_expected_form(text: str) -> None:
    with pytest.raises(keys.InvalidDuration, match="expected a duration like 30d"):
        keys.parse_duration(text, field="expires_in")


def test_lifetime_defaults_to_90_days_and_is_capped_at_a_year() -> None:
    assert keys.check_ttl(None) == timedelta(days=90)
    assert keys.check_ttl(timedelta(days=365)) == timedelta(days=365)
    with pytest.raises(keys.InvalidDuration, match="at most 365 days, got 366d"):
        keys.check_ttl(timedelta(days=366))
    with pytest.raises(keys.InvalidDuration):
        keys.check_ttl(timedelta(0))


def test_grace_defaults_to_a_day_and_may_be_zero() -> None:
    assert keys.check_grace(None) == timedelta(hours=24)
    assert keys.check_grace(timedelta(0)) == timedelta(0)
    with pytest.raises(keys.InvalidDuration):
        keys.check_grace(timedelta(days=31))


def test_stale_means_unused_for_30_days_or_expired() -> None:
    fresh = _record(created_at=NOW - timedelta(days=29, hours=23))
    never_used_old = _record(created_at=NOW - timedelta(days=30))
    used_recently = _record(
        created_at=NOW - timedelta(days=60), last_used_at=NOW - timedelta(days=29)
    )
    used_long_ago = _record(
        created_at=NOW - timedelta(days=60), last_used_at=NOW - timedelta(days=30)
    )
    expired = _record(expires_at=NOW)
    revoked = _record(created_at=NOW - timedelta(days=100), revoked_at=NOW - timedelta(days=80))

    assert [keys.is_stale(k, NOW) for k in (fresh, never_used_old, used_recently)] == [
        False,
        True,
        False,
    ]
    assert keys.is_stale(used_long_ago, NOW)
    assert keys.is_stale(expired, NOW)
    assert not keys.is_stale(revoked, NOW)
    assert keys.key_status(expired, NOW) is keys.KeyStatus.EXPIRED
    assert keys.key_status(revoked, NOW) is keys.KeyStatus.REVOKED


def test_an_expired_key_replaced_by_rotation_is_retired_not_stale() -> None:
    old = _record(id=1, expires_at=NOW - timedelta(hours=1))
    new = _record(id=2, prefix="bbbbbbbbbb")
    other = _record(id=3, prefix="cccccccccc", name="backup", expires_at=NOW - timedelta(hours=1))

    retired = keys.superseded_ids([old, new, other])

    assert retired == {1}
    assert not keys.is_stale(old, NOW, superseded=True)
    assert keys.is_stale(other, NOW, superseded=False)
