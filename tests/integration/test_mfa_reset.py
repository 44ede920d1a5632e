"""An admin resets a user's second factors: every factor goes, in one step, audited."""

from __future__ import annotations

import re

import httpx
import pytest

from nevertrust.app import Services
from nevertrust.audit import Action
from nevertrust.identity import UnknownUser

from ._support import PASSWORD, audit_records


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def admin(admin_browser: httpx.AsyncClient) -> httpx.AsyncClient:
    return admin_browser


def enrol_everything(svc: Services) -> None:
    svc.totp.enroll_confirmed("alice", actor="cli:root")
    svc.recovery_codes.generate("alice", actor="cli:root")


def test_reset_removes_every_factor_so_the_password_alone_signs_in_again(
    svc: Services,
) -> None:
    enrol_everything(svc)
    pending = svc.auth.login("alice", PASSWORD, source_ip="", user_agent="")
    assert pending.record.kind == "pending"

    done = svc.mfa_reset.reset("alice", actor="user:root")

    assert (done.totp, done.passkeys, done.recovery_codes) == (True, 0, 10)
    assert svc.auth.second_factors(svc.directory.get_user("alice").id) == frozenset()
    assert svc.recovery_codes.remaining("alice") == 0
    after = svc.auth.login("alice", PASSWORD, source_ip="", user_agent="")
    assert after.record.kind == "portal"
    record = audit_records(svc)[-2]  # the reset, then the sign-in
    assert (record.action, record.target, record.actor) == (
        Action.MFA_RESET,
        "user:alice",
        "user:root",
    )
    assert '"recovery_codes":10' in record.details


def test_resetting_a_user_without_factors_says_so_and_unknown_users_fail(
    svc: Services,
) -> None:
    assert not svc.mfa_reset.reset("alice", actor="user:root").anything
    with pytest.raises(UnknownUser):
        svc.mfa_reset.reset("nobody", actor="user:root")


async def test_the_api_resets_and_reports_what_it_removed(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    enrol_everything(svc)
    response = await admin.delete("/api/v1/users/alice/mfa")
    assert response.status_code == 200
    assert response.json() == {"user": "alice", "totp": True, "passkeys": 0, "recovery_codes": 10}
    assert (await admin.delete("/api/v1/users/nobody/mfa")).status_code == 404


async def test_the_console_shows_factors_and_resets_them(
    svc: Services, admin: httpx.AsyncClient
) -> None:
    enrol_everything(svc)
    page = await admin.get("/console")
    row = re.search(r"<td>alice</td>(.*?)</tr>", page.text, re.S)
    assert row and ">app<" in row.group(1) and "Reset MFA" in row.group(1)

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    done = await admin.post(
        "/console/users/alice", data={"csrf_token": token.group(1), "action": "reset-mfa"}
    )
    assert done.status_code == 303
    assert "Removed%20every%20second%20factor%20of%20alice" in done.headers["location"]
    page = await admin.get("/console")
    row = re.search(r"<td>alice</td>(.*?)</tr>", page.text, re.S)
    assert row and ">none<" in row.group(1)


def test_the_cli_resets_a_users_factors(svc: Services) -> None:
    from .test_totp_cli import cli

    enrol_everything(svc)
    out = cli(svc, "mfa", "reset", "alice").stdout
    assert "authenticator app removed" in out and "10 recovery code(s)" in out
    assert svc.auth.second_factors(svc.directory.get_user("alice").id) == frozenset()
    failed = cli(svc, "mfa", "reset", "nobody", ok=False)
    assert failed.returncode != 0 and "error[unknown-user]" in failed.stderr
