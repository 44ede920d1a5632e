"""`nevertrust devices ...`, `report devices` and `apps allow --require-compliant-device`,
run as a user runs them (a new process each), against both backends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nevertrust.app import Services
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.clock import FixedClock
from nevertrust.domain import AccessRequest, DeviceState, Effect, Principal, Reason
from nevertrust.pdp import compile_snapshot, decide
from tests.soft_device import SoftDevice, posture

from ._support import changes, client_for, last_change_id

_BIN = Path(sys.executable).parent / "nevertrust"
NEVERTRUST = str(_BIN) if _BIN.exists() else (shutil.which("nevertrust") or "nevertrust")


@pytest.fixture
def clock() -> FixedClock:
    """Now, not the suite's fixed date: the CLI runs as its own process on the real clock,
    and would see a device that reported at the fixed date as silent, hence stale."""
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def svc(admin_and_alice: Services) -> Services:
    return admin_and_alice


@pytest.fixture
def sqlite_svc(services: Services) -> Services:
    """SQLite only, for the commands whose storage the API tests cover on both backends."""
    services.directory.add_user("alice", actor="cli:root", password="correct horse battery")
    return services


def cli(svc: Services, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEVERTRUST_")}
    env["NEVERTRUST_HOME"] = str(svc.settings.home)
    if svc.settings.database_url:
        env["NEVERTRUST_DATABASE_URL"] = svc.settings.database_url
    return subprocess.run(
        [NEVERTRUST, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(svc: Services, *args: str, stdin: str | None = None) -> str:
    result = cli(svc, *args, stdin=stdin)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def enrol_with(svc: Services, token: str, **changes_: object) -> str:
    soft = SoftDevice()
    done = svc.device_enrolment.enrol(
        token=token, public_key_pem=soft.public_pem, name="laptop", posture=posture(**changes_)
    )
    return done.device.device_id


def test_the_token_command_prints_exactly_one_line_a_working_token(svc: Services) -> None:
    result = cli(svc, "devices", "token", "--user", "alice")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    token = result.stdout.strip()
    assert token.startswith("ntd_") and " " not in token
    device_id = enrol_with(svc, token)
    assert svc.devices.get(device_id).username == "alice"

    unknown = cli(svc, "devices", "token", "--user", "nobody")
    assert unknown.returncode != 0 and unknown.stdout == ""
    assert "error[unknown-user]" in unknown.stderr


def test_list_show_quarantine_release_and_remove_from_the_command_line(svc: Services) -> None:
    device_id = enrol_with(svc, svc.device_enrolment.create_token("alice", actor="t").token)
    listed = json.loads(ok(svc, "devices", "list", "--json"))
    assert [(d["device_id"], d["state"], d["user"], d["platform"]) for d in listed] == [
        (device_id, "compliant", "alice", "linux")
    ]
    assert device_id in ok(svc, "devices", "list")

    after = last_change_id(svc)
    assert ok(svc, "devices", "quarantine", device_id).strip() == (
        f"device {device_id} is quarantined"
    )
    assert svc.devices.get(device_id).state == "quarantined"
    assert changes(svc, after=after) == [ChangeEvent(Topic.DEVICE, device_id)]
    shown = json.loads(ok(svc, "devices", "show", device_id, "--json"))
    assert (shown["state"], shown["reasons"]) == ("quarantined", ["quarantined"])
    assert "state:        quarantined" in ok(svc, "devices", "show", device_id)

    assert "now compliant" in ok(svc, "devices", "release", device_id)
    assert "removed device" in ok(svc, "devices", "remove", device_id)
    gone = cli(svc, "devices", "quarantine", device_id)
    assert gone.returncode == 3 and "error[unknown-device]" in gone.stderr


def test_policies_and_the_inventory_report_from_the_command_line(sqlite_svc: Services) -> None:
    svc = sqlite_svc
    enrol_with(svc, svc.device_enrolment.create_token("alice", actor="t").token)
    old = enrol_with(
        svc, svc.device_enrolment.create_token("alice", actor="t").token, os_version="11.9"
    )
    shown = json.loads(ok(svc, "devices", "policy", "show", "linux", "--json"))
    assert (shown["platform"], shown["require_disk_encryption"]) == ("linux", True)
    out = ok(
        svc, "devices", "policy", "set", "linux", "--min-os-version", "12",
        "--max-patch-age", "none", "--require-firewall", "--no-require-encryption",
    )  # fmt: skip
    assert "min OS version:     12" in out and "max patch age:      -" in out
    policy = svc.devices.policy("linux")
    assert (policy.max_patch_age_days, policy.require_firewall) == (None, True)
    assert not policy.require_disk_encryption
    assert svc.devices.get(old).reasons == ("os-too-old",)
    bad = cli(svc, "devices", "policy", "set", "linux", "--min-os-version", "Bookworm")
    assert bad.returncode == 2 and "error[invalid-device-policy]" in bad.stderr

    report = json.loads(ok(svc, "report", "devices", "--json"))
    assert (report["devices"], report["compliant_percent"]) == (2, 50.0)
    assert report["by_state"]["noncompliant"] == 1
    assert "share compliant:    50.0%" in ok(svc, "report", "devices")


def ask(svc: Services, device: DeviceState | None) -> tuple[Effect, tuple[Reason, ...]]:
    view = svc.catalog.view()
    snapshot = compile_snapshot(version=1, apps=view.apps, rules=view.rules)
    who = Principal(user_id=1, name="alice", groups=frozenset({"eng"}))
    decision = decide(
        AccessRequest(principal=who, app="wiki", device=device), snapshot, svc.clock.now()
    )
    return decision.effect, decision.reasons


async def test_apps_allow_require_compliant_device_round_trips(svc: Services) -> None:
    ok(svc, "apps", "add", "wiki", "--upstream", "http://127.0.0.1:9001")
    ok(svc, "groups", "add", "eng")
    out = ok(svc, "apps", "allow", "wiki", "--group", "eng", "--require-compliant-device")
    assert out.strip() == "group eng may now use wiki from a compliant device"
    assert ask(svc, None) == (Effect.REQUIRE_DEVICE, (Reason.DEVICE_UNKNOWN,))
    noncompliant = DeviceState("dev_a", compliant=False)
    assert ask(svc, noncompliant) == (Effect.REQUIRE_DEVICE, (Reason.DEVICE_NONCOMPLIANT,))
    assert ask(svc, DeviceState("dev_a", compliant=True)) == (
        Effect.ALLOW,
        (Reason.ALLOWED_BY_GROUP,),
    )

    # Without the flag the rule keeps its requirement; --no-... lifts it.
    ok(svc, "apps", "allow", "wiki", "--group", "eng")
    listed = json.loads(ok(svc, "apps", "list", "--json"))
    assert listed[0]["compliant_device_groups"] == ["eng"]
    assert "eng*" in ok(svc, "apps", "list")
    ok(svc, "apps", "allow", "wiki", "--group", "eng", "--no-require-compliant-device")
    assert ask(svc, None) == (Effect.ALLOW, (Reason.ALLOWED_BY_GROUP,))

    # The API sets and shows the same flag.
    async with client_for(svc, "root") as admin:
        set_ = await admin.post(
            "/api/v1/apps/wiki/allow", json={"group": "eng", "require_compliant_device": True}
        )
        assert set_.json() == {"changed": True}
        apps = (await admin.get("/api/v1/apps")).json()
        assert apps[0]["compliant_device_groups"] == ["eng"]
        again = await admin.post("/api/v1/apps/wiki/allow", json={"group": "eng"})
        assert again.json() == {"changed": False}
    assert ask(svc, None) == (Effect.REQUIRE_DEVICE, (Reason.DEVICE_UNKNOWN,))

    # The access file says it too, and apply reconciles it.
    document = """
apps:
  - name: wiki
    upstream: http://127.0.0.1:9001
    allow:
      groups: [eng]
      require_compliant_device: false
"""
    applied = ok(svc, "apply", "-f", "-", stdin=document)
    assert "app wiki: group eng no longer needs a compliant device" in applied
    assert ask(svc, None) == (Effect.ALLOW, (Reason.ALLOWED_BY_GROUP,))
    applied = ok(svc, "apply", "-f", "-", stdin=document.replace("false", "[eng]"))
    assert "app wiki: group eng now needs a compliant device" in applied
    assert ask(svc, None) == (Effect.REQUIRE_DEVICE, (Reason.DEVICE_UNKNOWN,))
    assert "no changes" in ok(svc, "apply", "-f", "-", stdin=document.replace("false", "true"))
