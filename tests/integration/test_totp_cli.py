"""``nevertrust mfa`` and ``groups require-mfa`` as outside tools run them: a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from nevertrust.app import Services, build_services
from nevertrust.audit import Action
from nevertrust.clock import SystemClock
from nevertrust.identity.recovery import normalise_code

from ._support import PASSWORD, audit_records

_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    return any_services


def cli(svc: Services, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_HOME"] = str(svc.settings.home)
    env["NEVERTRUST_DATABASE_URL"] = svc.settings.database_url
    result = subprocess.run(
        [NEVERTRUST, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if ok:
        assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr}"
    return result


def oathtool_now(secret: str) -> str:
    out = subprocess.run(
        ["oathtool", "--totp", "-b", secret], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_totp_enroll_prints_a_uri_whose_secret_oathtool_turns_into_accepted_codes(
    svc: Services,
) -> None:
    result = cli(svc, "mfa", "totp", "enroll", "alice")

    uris = [line for line in result.stdout.splitlines() if line.startswith("otpauth://")]
    assert len(uris) == 1, result.stdout
    assert result.stdout.splitlines() == uris  # stdout holds the URI line and nothing else
    uri = urlsplit(uris[0])
    assert uri.path == "/NeverTrust:alice"
    secret = parse_qs(uri.query)["secret"][0]
    assert secret not in result.stderr
    # The running server (here: a replica on the real clock) accepts the app's code once.
    replica = build_services(svc.settings, clock=SystemClock(), migrate=False)
    try:
        alice = replica.directory.get_user("alice")
        code = oathtool_now(secret)
        assert replica.totp.verify(alice.id, code)
        assert not replica.totp.verify(alice.id, code)
    finally:
        replica.close()
    assert Action.MFA_ENROLLED in [r.action for r in audit_records(svc)]


def test_status_recovery_codes_and_remove(svc: Services) -> None:
    cli(svc, "mfa", "totp", "enroll", "alice")
    codes = cli(svc, "mfa", "recovery-codes", "alice").stdout.splitlines()

    assert len(codes) == 10 and all(normalise_code(c) for c in codes), codes
    status = json.loads(cli(svc, "mfa", "status", "alice", "--json").stdout)
    assert status == [
        {"user": "alice", "totp": True, "totp_pending": False, "passkeys": 0, "recovery_codes": 10}
    ]
    table = cli(svc, "mfa", "status").stdout.splitlines()
    assert table[0].split()[:2] == ["USER", "TOTP"]
    assert table[1].split() == ["alice", "yes", "0", "10"]

    assert cli(svc, "mfa", "totp", "remove", "alice").stdout.strip() == (
        "removed the authenticator app of alice"
    )
    assert json.loads(cli(svc, "mfa", "status", "--json").stdout)[0]["totp"] is False
    assert svc.recovery_codes.redeem(svc.directory.get_user("alice").id, codes[0])


def test_errors_name_the_problem_and_exit_non_zero(svc: Services) -> None:
    result = cli(svc, "mfa", "totp", "enroll", "nobody", ok=False)

    assert result.returncode == 3
    assert result.stderr.strip() == "error[unknown-user]: no user named 'nobody'"
    assert "otpauth://" not in result.stdout


def test_groups_require_mfa_and_off(svc: Services) -> None:
    svc.directory.add_group("finance", actor="cli:root")

    on = cli(svc, "groups", "require-mfa", "finance")
    assert [g.mfa_required for g in svc.directory.list_groups() if g.name == "finance"] == [True]
    off = cli(svc, "groups", "require-mfa", "finance", "--off")
    assert [g.mfa_required for g in svc.directory.list_groups() if g.name == "finance"] == [False]

    assert "must now sign in with a second factor" in on.stdout
    assert "no longer need a second factor" in off.stdout
    assert cli(svc, "groups", "require-mfa", "nope", ok=False).returncode == 3
