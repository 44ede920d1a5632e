from __future__ import annotations

import pytest

from nevertrust.crypto import MasterKey
from nevertrust.errors import Forbidden
from nevertrust.web.csrf import CsrfFailed, CsrfTokens


@pytest.fixture
def tokens() -> CsrfTokens:
    return CsrfTokens(MasterKey(b"k" * 32))


def test_token_verifies_for_its_own_cookie(tokens: CsrfTokens) -> None:
    cookie = CsrfTokens.new_cookie()
    tokens.check(cookie, tokens.token_for(cookie))


def test_token_is_stable_for_a_cookie_and_differs_between_cookies(tokens: CsrfTokens) -> None:
    a, b = CsrfTokens.new_cookie(), CsrfTokens.new_cookie()
    assert a != b
    assert tokens.token_for(a) == tokens.token_for(a)
    assert tokens.token_for(a) != tokens.token_for(b)


def test_token_for_another_cookie_is_rejected(tokens: CsrfTokens) -> None:
    mine, theirs = CsrfTokens.new_cookie(), CsrfTokens.new_cookie()
    with pytest.raises(CsrfFailed, match="does not match"):
        tokens.check(mine, tokens.token_for(theirs))


def test_token_from_another_installation_is_rejected(tokens: CsrfTokens) -> None:
    cookie = CsrfTokens.new_cookie()
    foreign = CsrfTokens(MasterKey(b"o" * 32)).token_for(cookie)
    with pytest.raises(CsrfFailed, match="does not match"):
        tokens.check(cookie, foreign)


def test_cookie_value_itself_is_not_a_valid_token(tokens: CsrfTokens) -> None:
    cookie = CsrfTokens.new_cookie()
    with pytest.raises(CsrfFailed):
        tokens.check(cookie, cookie)


@pytest.mark.parametrize(
    ("cookie", "token"),
    [(None, "t"), ("", "t"), ("c", None), ("c", ""), (None, None)],
    ids=["no_cookie", "empty_cookie", "no_token", "empty_token", "neither"],
)
def test_missing_cookie_or_token_fails(
    tokens: CsrfTokens, cookie: str | None, token: str | None
) -> None:
    with pytest.raises(CsrfFailed, match="missing CSRF token"):
        tokens.check(cookie, token)


def test_tampered_token_fails(tokens: CsrfTokens) -> None:
    cookie = CsrfTokens.new_cookie()
    good = tokens.token_for(cookie)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    with pytest.raises(CsrfFailed):
        tokens.check(cookie, bad)


def test_csrf_failure_is_forbidden_with_its_own_code() -> None:
    assert issubclass(CsrfFailed, Forbidden)
    assert CsrfFailed.code == "csrf-failed"
    assert CsrfFailed.http_status == 403


def test_token_is_url_safe_without_padding(tokens: CsrfTokens) -> None:
    token = tokens.token_for(CsrfTokens.new_cookie())
    assert "=" not in token and "+" not in token and "/" not in token
    assert len(token) == 43  # 32-byte HMAC-SHA256, base64url without padding
