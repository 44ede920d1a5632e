"""Policies against the real server: ``nevertrust policy ...``, the gateway and the API."""

from __future__ import annotations

import json
import re
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.browser import Browser, hidden_fields
from tests.e2e.conftest import NEVERTRUST, Platform

PASSWORD = "correct horse battery staple"
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

POLICY = """\
version: 1
policies:
  - name: whoami
    apps: [whoami]
    rules:
      - name: staff
        effect: allow
        when:
          groups: [staff]
      - name: edits-need-mfa
        effect: step-up
        when:
          http: {methods: [POST]}
        step_up: {methods: [otp, webauthn], max_age: 15m}
      - name: no-secrets
        effect: deny
        when:
          http: {paths: ["/secret*"]}
  - name: trial
    mode: report-only
    apps: [whoami]
    rules:
      - name: office-network-only
        effect: deny
        when:
          source: {not_cidr: [10.0.0.0/8]}
"""

# The draft a reviewer would replay: staff lose the app, contractors get it.
DRAFT = POLICY.replace("groups: [staff]", "groups: [contractors]")


def _signed_in_to_whoami(platform: Platform, user: str) -> Browser:
    """A browser that went to whoami, signed in as ``user`` and holds the app's cookie."""
    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("whoami") + "/")
    response, hops = platform.login(b, user, PASSWORD, form=form)
    assert hops[-1].url == platform.app_url("whoami") + "/", [h.url for h in hops]
    assert response.status_code in (200, 403), response.text
    return b


def _administrator_details(page: str) -> str:
    """The text under "Details for your administrator" on a gateway deny page."""
    found = re.search(r"Details for your administrator</summary>(.*?)</details>", page, re.S)
    assert found, page
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def _what_if(platform: Platform, user: str, *args: str) -> dict[str, Any]:
    result = platform.cli(
        "policy", "what-if", "--user", user, "--app", "whoami", "--ip", "127.0.0.1", *args, "--json"
    )
    decision: dict[str, Any] = json.loads(result.stdout)
    return decision


def _decisions(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if str(r["action"]).startswith("pdp:decision:")]


@pytest.mark.slow
def test_an_applied_policy_is_enforced_explained_audited_and_replayable(
    platform: Platform, tmp_path: Path
) -> None:
    platform.cli("groups", "add", "staff")
    platform.cli("groups", "add", "sales")
    platform.add_user("bob", PASSWORD, "staff")
    platform.add_user("mallory", PASSWORD, "sales")
    file = tmp_path / "policy.yaml"
    file.write_text(POLICY)

    applied = platform.cli("policy", "apply", "-f", str(file))

    assert applied.stdout.splitlines() == [
        "policy whoami: added (enforce)",
        "policy trial: added (report-only)",
        "policy version 1 is in force",
    ]
    app = platform.app_url("whoami")

    # (a) staff may read: the request reaches the upstream.
    bob = _signed_in_to_whoami(platform, "bob")
    response = bob.request("GET", app + "/hello")
    assert response.status_code == 200, response.text
    assert response.json()["user"] == "bob"

    # (b) a POST needs a second factor: 403 with the reason and the deciding rule.
    response = bob.request("POST", app + "/form", data={"x": "1"})
    assert response.status_code == 403
    assert "This application needs a stronger sign-in" in response.text
    assert "mfa-required" in response.text
    assert "Deciding rule: whoami/edits-need-mfa" in _administrator_details(response.text)

    # (c) a denied path, whatever the method.
    response = bob.request("GET", app + "/secret/plans")
    assert response.status_code == 403
    assert "denied-by-rule" in response.text
    assert "Deciding rule: whoami/no-secrets" in _administrator_details(response.text)

    # Someone in no allowed group: the near misses name each rule and its failed condition.
    mallory = _signed_in_to_whoami(platform, "mallory")
    response = mallory.request("GET", app + "/")
    assert response.status_code == 403
    assert "not-in-allowed-group" in response.text
    details = _administrator_details(response.text)
    assert "whoami/staff groups: needs a member of ['staff']; 'mallory' is in ['sales']" in details
    assert "allow:whoami:admins groups:" in details  # the `apps allow` rule of the demo app

    # (d) the audit log: what each request decided, and what report-only would have done.
    def complete(rows: list[dict[str, Any]]) -> bool:
        paths = [json.loads(r["details"]).get("path") for r in rows if r["target"] == "app:whoami"]
        return all(p in paths for p in ("/hello", "/form", "/secret/plans")) and any(
            r["actor"] == "user:mallory" and r["action"] == "pdp:decision:denied" for r in rows
        )

    records = _decisions(platform.audit_records(until=complete))
    by_request = {(r["actor"], r["details"]["method"], r["details"]["path"]): r for r in records}
    hello = by_request[("user:bob", "GET", "/hello")]
    assert (hello["action"], hello["reason"], hello["details"]["rule"]) == (
        "pdp:decision:allowed",
        "allowed-by-rule",
        "whoami/staff",
    )
    assert hello["details"]["report_only"] == {
        "effect": "deny",
        "reasons": ["denied-by-rule"],
        "rule": "trial/office-network-only",
    }
    assert hello["details"]["groups"] == ["staff"]
    assert hello["details"]["methods"] == ["pwd"]
    form = by_request[("user:bob", "POST", "/form")]
    assert (form["action"], form["reason"], form["details"]["rule"]) == (
        "pdp:decision:denied",
        "mfa-required",
        "whoami/edits-need-mfa",
    )
    secret = by_request[("user:bob", "GET", "/secret/plans")]
    assert (secret["reason"], secret["details"]["rule"]) == ("denied-by-rule", "whoami/no-secrets")
    # Report-only would turn the step-up into a denial; the denial it would leave alone.
    assert form["details"]["report_only"]["effect"] == "deny"
    assert "report_only" not in secret["details"]
    denied = by_request[("user:mallory", "GET", "/")]
    assert (denied["action"], denied["reason"]) == ("pdp:decision:denied", "not-in-allowed-group")

    # What-if agrees with what the gateway did, request by request.
    for record, args in (
        (hello, ("--path", "/hello")),
        (form, ("--method", "POST", "--path", "/form")),
        (secret, ("--path", "/secret/plans")),
    ):
        decision = _what_if(platform, "bob", *args)
        assert (",".join(decision["reasons"]), decision["rule"]) == (
            record["reason"],
            record["details"]["rule"],
        ), args
    decision = _what_if(platform, "bob", "--path", "/hello")
    assert decision["effect"] == "allow"
    assert decision["report_only"]["effect"] == "deny"
    assert decision["report_only"]["rule"] == "trial/office-network-only"
    decision = _what_if(platform, "bob", "--method", "POST")
    assert (decision["effect"], decision["step_up"]) == (
        "step-up",
        {"methods": ["otp", "webauthn"], "max_age_seconds": 900},
    )
    decision = _what_if(platform, "mallory")
    assert (decision["effect"], decision["reasons"]) == ("deny", ["not-in-allowed-group"])
    assert {(t["rule"], t["failed_condition"]) for t in decision["trace"]} == {
        ("whoami/staff", "groups"),
        ("allow:whoami:admins", "groups"),
    }

    # Replay a draft over the recorded traffic: bob would lose access, mallory is unchanged.
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT)
    report = json.loads(platform.cli("policy", "replay", "-f", str(draft), "--json").stdout)
    assert report["replayed"] >= 4
    assert report["newly_allowed"] == []
    [newly_denied] = report["newly_denied"]
    assert (newly_denied["user"], newly_denied["app"], newly_denied["reasons"]) == (
        "bob",
        "whoami",
        ["not-in-allowed-group"],
    )
    bob_allowed = sum(
        1 for r in records if r["actor"] == "user:bob" and r["action"] == "pdp:decision:allowed"
    )
    assert newly_denied["requests"] == bob_allowed
    # Replaying changed nothing: still version 1, bob still gets in.
    assert bob.request("GET", app + "/hello").status_code == 200
    assert "# version 1," in platform.cli("policy", "show").stdout


@pytest.mark.slow
def test_a_broken_document_is_refused_with_its_place_and_rollback_restores(
    platform: Platform, tmp_path: Path
) -> None:
    platform.cli("groups", "add", "staff")
    platform.add_user("bob", PASSWORD, "staff")
    file = tmp_path / "policy.yaml"
    file.write_text(POLICY)
    platform.cli("policy", "apply", "-f", str(file))
    bob = _signed_in_to_whoami(platform, "bob")
    app = platform.app_url("whoami")
    assert bob.request("GET", app + "/").status_code == 200

    broken = tmp_path / "broken.yaml"
    broken.write_text(DRAFT.replace("not_cidr: [10.0.0.0/8]", "not_cidr: [10.0.0.300/8]"))
    result = platform.cli("policy", "apply", "-f", str(broken), check=False)

    assert result.returncode != 0
    assert result.stdout == ""
    assert f"error[invalid-policy]: {broken}:26:30: " in result.stderr, result.stderr
    assert "'10.0.0.300/8' is not an IP network" in result.stderr
    # The version in force stays in force: bob is still let in, and nothing was recorded.
    assert bob.request("GET", app + "/").status_code == 200
    history = platform.cli("policy", "history").stdout
    assert [line.split()[0] for line in history.splitlines() if line.startswith("v")] == ["v1"]
    validated = platform.cli("policy", "validate", "-f", str(broken), check=False)
    assert validated.returncode != 0
    assert f"{broken}:26:30:" in validated.stderr

    # A valid change that locks bob out is enforced on the very next request ...
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT)
    assert (
        "policy version 2 is in force" in platform.cli("policy", "apply", "-f", str(draft)).stdout
    )
    response = bob.request("GET", app + "/")
    assert response.status_code == 403
    assert "not-in-allowed-group" in response.text

    # ... and rolling back to version 1 (as version 3) lets him in again at once.
    rolled = platform.cli("policy", "rollback", "1")
    assert rolled.stdout.strip() == "version 1 restored as version 3"
    assert bob.request("GET", app + "/").status_code == 200
    history = platform.cli("policy", "history").stdout
    assert [line.split()[0] for line in history.splitlines() if line.startswith("v")] == [
        "v3",
        "v2",
        "v1",
    ]
    assert "rollback to v1" in history
    shown = platform.cli("policy", "show").stdout
    assert shown.splitlines()[0].startswith("# version 3, applied ")
    assert shown.split("\n", 1)[1] == POLICY
    assert "already in force" in platform.cli("policy", "rollback", "3").stdout


def _policy_test(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``nevertrust policy test`` as a user runs it: no server, a home of its own."""
    return subprocess.run(
        [NEVERTRUST, "policy", "test", *args],
        env={"PATH": "/usr/bin:/bin", "NEVERTRUST_HOME": str(home), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_documented_example_policy_passes_its_tests_offline(tmp_path: Path) -> None:
    cases = EXAMPLES / "policy_test.yaml"
    count = len(yaml.safe_load(cases.read_text())["cases"])

    result = _policy_test(str(cases), home=tmp_path / "home")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("PASS  ")]) == count == 8
    assert lines[-1] == "8 passed, 0 failed"
    assert not (tmp_path / "home").exists()  # offline: nothing was created


def test_a_failing_policy_test_exits_1_and_says_what_differed(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        f"policy: {EXAMPLES / 'policy.yaml'}\n"
        "apps: [{name: wiki}]\n"
        "cases:\n"
        "  - name: engineers read the wiki\n"
        "    request: {user: alice, groups: [engineering], app: wiki}\n"
        "    expect: allow\n"
        "  - name: sales read the wiki\n"
        "    request: {user: bob, groups: [sales], app: wiki}\n"
        "    expect: allow\n"
        "  - name: a POST with a password only is stale\n"
        "    request: {user: alice, groups: [engineering], app: wiki, method: POST}\n"
        "    expect: step-up\n"
        "    reason: mfa-stale\n"
        "    rule: wiki/edits-need-mfa\n"
    )

    result = _policy_test(str(cases), home=tmp_path / "home")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "PASS  engineers read the wiki"
    assert lines[1] == "FAIL  sales read the wiki: expected allow, got deny"
    # The near miss is printed under the failure.
    assert lines[2].strip() == (
        "wiki/engineers: groups: needs a member of ['engineering']; 'bob' is in ['sales']"
    )
    assert lines[3] == (
        "FAIL  a POST with a password only is stale: expected reason mfa-stale, got mfa-required"
    )
    assert lines[-1] == "1 passed, 2 failed"

    # A test file that is itself wrong names its place.
    cases.write_text("cases:\n  - name: x\n    request: {user: a, app: w}\n    expect: maybe\n")
    broken = _policy_test(str(cases), "--policy", str(EXAMPLES / "policy.yaml"), home=tmp_path)
    assert broken.returncode not in (0, 1)
    assert f"{cases}:4:13:" in broken.stderr, broken.stderr


@pytest.mark.slow
def test_the_policy_api_needs_an_admin_and_a_csrf_token(platform: Platform, tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(POLICY)
    platform.cli("policy", "apply", "-f", str(file))
    platform.add_user("root2", PASSWORD, "admins")
    platform.cli("groups", "add", "staff")
    platform.add_user("bob", PASSWORD, "staff")
    api = platform.portal + "/api/v1"

    anonymous = platform.browser()
    response = anonymous.request("GET", api + "/policies/active")
    assert response.status_code == 401, response.text
    outsider = platform.browser()
    platform.login(outsider, "bob", PASSWORD)
    assert outsider.request("GET", api + "/policies/active").status_code == 403

    b = platform.browser()
    response, _ = platform.login(b, "root2", PASSWORD)
    assert response.status_code == 200
    page, _ = b.go("GET", platform.portal + "/console/policies")
    assert page.status_code == 200, page.text
    assert "staff" in unescape(page.text)  # the document in force, in the editor
    token = hidden_fields(page.text)["csrf_token"]
    body = {
        "request": {
            "user": "bob",
            "groups": ["staff"],
            "app": "whoami",
            "method": "POST",
            "source_ip": "127.0.0.1",
        }
    }

    response = b.request(
        "POST", api + "/policies/what-if", json=body, headers={"x-csrf-token": token}
    )

    assert response.status_code == 200, response.text
    decision = response.json()
    assert (decision["effect"], decision["reasons"], decision["rule"]) == (
        "step-up",
        ["mfa-required"],
        "whoami/edits-need-mfa",
    )
    under_draft = b.request(
        "POST",
        api + "/policies/what-if",
        json={**body, "draft": DRAFT},
        headers={"x-csrf-token": token},
    ).json()
    assert under_draft["reasons"] == ["not-in-allowed-group"]

    # Without the header, or with a token of another browser's cookie: refused.
    for headers in ({}, {"x-csrf-token": "x" * 43}):
        refused = b.request("POST", api + "/policies/what-if", json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "csrf-failed"
    # The same token from a browser without the matching cookie is refused too.
    portal_host = f"auth.localhost:{platform.port}"
    thief = platform.browser()
    thief.set_cookie(portal_host, "nt_session", b.cookies(portal_host)["nt_session"])
    stolen = thief.request(
        "POST", api + "/policies/what-if", json=body, headers={"x-csrf-token": token}
    )
    assert (stolen.status_code, stolen.json()["error"]) == (403, "csrf-failed")

    active = b.request("GET", api + "/policies/active")
    assert active.status_code == 200
    assert (active.json()["version"], active.json()["document"]) == (1, POLICY)
    assert active.json()["summary"] == [
        "policy whoami: added (enforce)",
        "policy trial: added (report-only)",
    ]
    history = b.request("GET", api + "/policies").json()
    assert [(v["version"], v["document"]) for v in history] == [(1, None)]

    # Applying through the API takes the token too, and the gateway enforces it at once.
    app = platform.app_url("whoami")
    staff = _signed_in_to_whoami(platform, "bob")
    assert staff.request("GET", app + "/").status_code == 200
    apply_draft = b.request(
        "POST",
        api + "/policies",
        content=DRAFT,
        headers={"content-type": "application/yaml", "x-csrf-token": token},
    )
    assert apply_draft.status_code == 200, apply_draft.text
    assert apply_draft.json()["version"] == 2
    assert staff.request("GET", app + "/").status_code == 403
    unsafe = b.request("POST", api + "/policies/rollback/1")
    assert (unsafe.status_code, unsafe.json()["error"]) == (403, "csrf-failed")
    rolled = b.request("POST", api + "/policies/rollback/1", headers={"x-csrf-token": token})
    assert (rolled.status_code, rolled.json()["version"]) == (200, 3)
    assert staff.request("GET", app + "/").status_code == 200
    bad = b.request(
        "POST",
        api + "/policies/validate",
        content="version: 1\npolicies:\n  - name: Bad Name\n",
        headers={"content-type": "application/yaml", "x-csrf-token": token},
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["error"] == "invalid-policy"
    assert bad.json()["detail"].startswith("request-body:3:")

    # The console's what-if form answers the same, and its editor refuses a broken document.
    console = b.request(
        "POST",
        platform.portal + "/console/policies/what-if",
        data={"csrf_token": token, "user": "bob", "app": "whoami", "method": "POST"},
    )
    assert console.status_code == 200, console.text
    assert "<code>mfa-required</code>" in console.text
    assert "Deciding rule: <code>whoami/edits-need-mfa</code>" in console.text
    refused = b.request(
        "POST",
        platform.portal + "/console/policies/apply",
        data={"csrf_token": token, "document": POLICY.replace("effect: deny", "effect: nope")},
    )
    assert refused.status_code == 400, refused.text
    assert "console:16:17: policies.0.rules.2.effect" in unescape(refused.text)
    assert "effect: nope" in refused.text  # the draft is kept to be fixed
    assert b.request("GET", api + "/policies/active").json()["version"] == 3

    spec = httpx.get(
        f"http://127.0.0.1:{platform.port}/api/v1/openapi.json",
        headers={"host": f"auth.localhost:{platform.port}"},
        timeout=15,
        trust_env=False,
    )
    assert spec.status_code == 200
    paths = set(spec.json()["paths"])
    assert {
        "/policies",
        "/policies/active",
        "/policies/schema",
        "/policies/{version}",
        "/policies/validate",
        "/policies/rollback/{version}",
        "/policies/what-if",
        "/policies/replay",
    } <= paths
