"""`nevertrust service-accounts` and `nevertrust report identity`, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nevertrust.app import Services, build_services
from nevertrust.identity.api_keys import parse_key

from ._support import PASSWORD

_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")


@pytest.fixture
def svc(services: Services) -> Services:
    """SQLite only: the CLI is thin, and each run is a new process (about a second)."""
    services.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    return services


@pytest.fixture
def any_svc(any_services: Services) -> Services:
    any_services.directory.add_user("alice", actor="cli:root", password=PASSWORD)
    return any_services


def cli(svc: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_HOME"] = str(svc.settings.home)
    if svc.settings.database_url:
        env["NEVERTRUST_DATABASE_URL"] = svc.settings.database_url
    return subprocess.run(
        [NEVERTRUST, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def ok(svc: Services, *args: str) -> subprocess.CompletedProcess[str]:
    result = cli(svc, *args)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr}"
    return result


def test_create_issue_list_rotate_revoke_from_the_command_line(any_svc: Services) -> None:
    svc = any_svc
    created = ok(svc, "service-accounts", "create", "ci-bot", "--owner", "alice",
                 "--description", "deploys")  # fmt: skip
    assert created.stdout.strip() == "created service account ci-bot (owner alice)"

    issued = ok(svc, "service-accounts", "keys", "issue", "ci-bot", "--name", "deploy",
                "--scope", "api:read", "--scope", "api:write", "--expires-in", "30d")  # fmt: skip
    plaintext = issued.stdout.strip()  # the key alone on stdout, for KEY=$(...)
    parsed = parse_key(plaintext)
    assert parsed is not None
    assert f"issued key {parsed.prefix} (deploy) for ci-bot" in issued.stderr
    assert "shown only this once" in issued.stderr
    # Another process (a real clock, like the server) accepts the key.
    server = build_services(svc.settings, migrate=False)
    try:
        assert server.service_accounts.authenticate(plaintext) is not None
    finally:
        server.close()

    listed = json.loads(ok(svc, "service-accounts", "list", "--json").stdout)
    assert [(a["name"], a["owner"], a["owner_problem"]) for a in listed] == [
        ("ci-bot", "alice", None)
    ]
    [key] = listed[0]["keys"]
    assert (key["prefix"], key["scopes"], key["stale"]) == (
        parsed.prefix,
        ["api:read", "api:write"],
        False,
    )
    assert parsed.secret not in json.dumps(listed)
    table = ok(svc, "service-accounts", "list").stdout
    assert "ci-bot  active  owner alice" in table and parsed.prefix in table

    rotated = ok(svc, "service-accounts", "keys", "rotate", parsed.prefix, "--grace", "1h")
    new = parse_key(rotated.stdout.strip())
    assert new is not None and new.prefix != parsed.prefix
    assert f"replacing {parsed.prefix}" in rotated.stderr

    revoked = ok(svc, "service-accounts", "keys", "revoke", new.prefix)
    assert revoked.stdout.strip() == f"revoked key {new.prefix}"
    statuses = {k.prefix: k.status for k in svc.service_accounts.list_keys("ci-bot")}
    assert statuses[new.prefix] == "revoked"


def test_cli_errors_are_clear_and_exit_non_zero(svc: Services) -> None:
    ok(svc, "service-accounts", "create", "ci-bot", "--owner", "alice")

    bad_owner = cli(svc, "service-accounts", "create", "x-bot", "--owner", "ci-bot")
    bad_scope = cli(svc, "service-accounts", "keys", "issue", "ci-bot", "--name", "k",
                    "--scope", "admin")  # fmt: skip
    forever = cli(svc, "service-accounts", "keys", "issue", "ci-bot", "--name", "k",
                  "--scope", "api:read", "--expires-in", "2000d")  # fmt: skip
    no_expiry = cli(svc, "service-accounts", "keys", "issue", "ci-bot", "--name", "k",
                    "--scope", "api:read", "--no-expiry")  # fmt: skip

    assert bad_owner.returncode == 2
    assert bad_owner.stderr.startswith("error[invalid-owner]: owner 'ci-bot' is a service account")
    assert bad_scope.returncode == 2
    assert bad_scope.stderr.startswith("error[unknown-scope]: unknown scope 'admin'")
    assert forever.stderr.startswith("error[invalid-duration]: key lifetime must be")
    assert no_expiry.returncode != 0 and "--no-expiry" in no_expiry.stderr
    assert svc.service_accounts.list_keys("ci-bot") == ()


def test_set_owner_and_the_users_list_shows_kinds(svc: Services) -> None:
    svc.directory.add_user("bob", actor="cli:root")
    ok(svc, "service-accounts", "create", "ci-bot", "--owner", "alice")

    assert ok(svc, "service-accounts", "set-owner", "ci-bot", "bob").stdout.strip() == (
        "ci-bot is now owned by bob"
    )

    assert svc.service_accounts.get("ci-bot").owner == "bob"
    users = json.loads(ok(svc, "users", "list", "--json").stdout)
    assert {u["name"]: u["kind"] for u in users} == {
        "alice": "person",
        "bob": "person",
        "ci-bot": "service",
    }
    passwd = cli(svc, "users", "passwd", "ci-bot")
    assert passwd.returncode == 2 and "has no password and uses API keys" in passwd.stderr


def test_report_identity_prints_text_and_stable_json(svc: Services) -> None:
    ok(svc, "service-accounts", "create", "ci-bot", "--owner", "alice")

    text = ok(svc, "report", "identity").stdout
    data = json.loads(ok(svc, "report", "identity", "--json", "--inactive-days", "60").stdout)

    assert "enabled people:                 1" in text
    assert "without a second factor:        alice" in text
    assert data["inactive_days"] == 60
    assert (data["people"], data["mfa_percent"], data["service_accounts"]) == (1, 0.0, 1)
    assert data["service_accounts_without_owner"] == []
