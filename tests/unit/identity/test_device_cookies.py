"""Device cookies name a user and a device, and only this platform can mint them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nevertrust.crypto import MasterKey
from nevertrust.identity.device_cookies import DeviceCookies

COOKIES = DeviceCookies(MasterKey(b"k" * 32))


def test_a_cookie_is_valid_for_its_user_only_whatever_the_case() -> None:
    value = COOKIES.issue("Alice")
    device = COOKIES.device_for(value, "alice")
    assert device is not None and value.startswith(device + ".")
    assert COOKIES.device_for(value, "bob") is None


def test_each_sign_in_gets_a_new_device_id() -> None:
    assert COOKIES.issue("alice") != COOKIES.issue("alice")


def test_another_master_key_does_not_accept_it() -> None:
    value = COOKIES.issue("alice")
    assert DeviceCookies(MasterKey(b"z" * 32)).device_for(value, "alice") is None


@given(st.integers(min_value=0), st.characters(min_codepoint=33, max_codepoint=126))
def test_any_changed_character_invalidates_the_cookie(position: int, char: str) -> None:
    value = COOKIES.issue("alice")
    i = position % len(value)
    changed = value[:i] + char + value[i + 1 :]
    if changed != value:
        assert COOKIES.device_for(changed, "alice") is None


def test_garbage_is_refused_without_error() -> None:
    for value in ["", ".", "abc", "a.", ".b", "x" * 500]:
        assert COOKIES.device_for(value, "alice") is None
