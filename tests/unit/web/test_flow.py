"""What a step-up asks for, parsed from the gateway's redirect, and when it is met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nevertrust.identity.models import SessionKind, SessionRecord
from nevertrust.web.portal._flow import FlowParams, StepUpAsk, continue_url

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def session(methods: tuple[str, ...], *, age: timedelta) -> SessionRecord:
    return SessionRecord(
        id_hash="h",
        user_id=1,
        kind=SessionKind.PORTAL,
        parent_hash=None,
        app_name=None,
        auth_methods=methods,
        auth_time=NOW - age,
        created_at=NOW - age,
        expires_at=NOW + timedelta(hours=1),
        revoked_at=None,
        source_ip="",
        user_agent="",
    )


@pytest.mark.parametrize(
    ("methods", "max_age"),
    [("", "60"), ("otp", ""), ("otp", "-5"), ("otp", "0"), ("telepathy", "60"), ("otp", "9e9")],
)
def test_malformed_asks_are_ignored_and_the_gateway_decides_again(
    methods: str, max_age: str
) -> None:
    assert StepUpAsk.parse(methods, max_age) is None


def test_an_ask_is_met_by_a_listed_method_within_the_age() -> None:
    ask = StepUpAsk.parse("otp,webauthn", "300")
    assert ask is not None
    assert ask.satisfied_by(session(("pwd", "otp", "mfa"), age=timedelta(seconds=299)), NOW)
    assert not ask.satisfied_by(session(("pwd", "otp", "mfa"), age=timedelta(seconds=301)), NOW)
    assert not ask.satisfied_by(session(("pwd",), age=timedelta(0)), NOW)


def test_only_factors_that_meet_the_ask_are_offered() -> None:
    passkey_only = StepUpAsk.parse("webauthn", "60")
    assert passkey_only is not None
    assert passkey_only.usable_factors(frozenset({"otp", "webauthn"})) == {"webauthn"}
    any_mfa = StepUpAsk.parse("mfa", "60")
    assert any_mfa is not None
    assert any_mfa.usable_factors(frozenset({"otp", "webauthn"})) == {"otp", "webauthn"}
    assert any_mfa.usable_factors(frozenset()) == frozenset()


def test_continue_goes_through_authorize_only_with_both_rd_and_state() -> None:
    assert continue_url(FlowParams()) == "/"
    assert continue_url(FlowParams(rd="http://whoami.localhost/")) == "/"
    url = continue_url(FlowParams(rd="http://whoami.localhost/a?b=1", state="s"))
    assert url == "/authorize?rd=http%3A%2F%2Fwhoami.localhost%2Fa%3Fb%3D1&state=s"
