"""Declarative apply: the database is made to match a file, all or nothing."""

from __future__ import annotations

import hashlib
import json

import pytest

from nevertrust.app import Services
from nevertrust.apps import ApplyResult, ConfigFileError
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic

from ._support import audit_records, changes, db_state, last_change_id

DOC = """\
version: 1
groups:
  - name: engineering
    members: [alice, bob]
  - name: ops
apps:
  - name: whoami
    upstream: http://127.0.0.1:9001
    allow:
      groups: [engineering]
  - name: grafana
    upstream: http://127.0.0.1:3000
    description: Dashboards
    allow:
      groups: [engineering, ops]
"""


@pytest.fixture
def svc(any_services: Services) -> Services:
    for name in ("alice", "bob", "carol"):
        any_services.directory.add_user(name, actor="admin:root")
    return any_services


def apply(svc: Services, text: str = DOC, **kwargs: bool) -> ApplyResult:
    return svc.apply.apply(text, file="access.yaml", actor="admin:root", **kwargs)


def members(svc: Services) -> dict[str, tuple[str, ...]]:
    return {g.name: g.members for g in svc.directory.list_groups()}


def rules(svc: Services) -> set[tuple[str, str]]:
    return {(r.app, r.group) for r in svc.catalog.list_rules()}


def config_audits(svc: Services) -> list[dict[str, object]]:
    return [json.loads(r.details) for r in audit_records(svc) if r.action == Action.CONFIG_APPLIED]


def test_apply_creates_groups_apps_and_rules(svc: Services) -> None:
    result = apply(svc)

    assert members(svc) == {"engineering": ("alice", "bob"), "ops": ()}
    assert {(a.name, a.upstream, a.description) for a in svc.catalog.list_apps()} == {
        ("whoami", "http://127.0.0.1:9001", ""),
        ("grafana", "http://127.0.0.1:3000", "Dashboards"),
    }
    assert rules(svc) == {("whoami", "engineering"), ("grafana", "engineering"), ("grafana", "ops")}
    assert result.version is not None
    assert set(result.changes) == {
        "group engineering: created",
        "group engineering: added alice",
        "group engineering: added bob",
        "group ops: created",
        "app whoami: created with upstream http://127.0.0.1:9001",
        "app whoami: allow group engineering",
        "app grafana: created with upstream http://127.0.0.1:3000",
        "app grafana: allow group engineering",
        "app grafana: allow group ops",
    }


def test_each_apply_stores_a_version_and_one_audit_record_with_the_changes(
    svc: Services,
) -> None:
    start = last_change_id(svc)

    result = apply(svc)

    [version] = svc.catalog.config_versions()
    assert (version.version, version.document, version.source, version.applied_by) == (
        result.version,
        DOC,
        "access.yaml",
        "admin:root",
    )
    assert version.sha256 == hashlib.sha256(DOC.encode()).hexdigest()
    assert version.summary == "\n".join(result.changes)
    [applied] = [r for r in audit_records(svc) if r.action == Action.CONFIG_APPLIED]
    assert applied.target == f"config:v{result.version}"
    assert json.loads(applied.details) == {"file": "access.yaml", "changes": list(result.changes)}
    assert ChangeEvent(Topic.CONFIG, str(result.version)) in changes(svc, after=start)


def test_applying_the_same_file_twice_changes_nothing_the_second_time(svc: Services) -> None:
    apply(svc)
    before = db_state(svc)

    again = apply(svc)

    assert (again.version, again.changes) == (None, ())
    assert db_state(svc) == before
    assert len(svc.catalog.config_versions()) == 1
    assert len(config_audits(svc)) == 1


def test_listed_apps_get_exactly_the_listed_groups(svc: Services) -> None:
    svc.directory.add_group("ops", actor="admin:root")
    svc.directory.add_group("engineering", actor="admin:root")
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    svc.catalog.set_rule("whoami", "ops", True, actor="admin:root")

    result = apply(svc)

    assert ("whoami", "ops") not in rules(svc)
    assert ("whoami", "engineering") in rules(svc)
    assert "app whoami: no longer allow group ops" in result.changes


def test_listed_members_are_exact_and_unlisted_membership_is_kept(svc: Services) -> None:
    svc.directory.add_group("engineering", actor="admin:root")
    svc.directory.add_group("ops", actor="admin:root")
    svc.directory.set_membership("engineering", "carol", True, actor="admin:root")
    svc.directory.set_membership("engineering", "alice", True, actor="admin:root")
    svc.directory.set_membership("ops", "carol", True, actor="admin:root")

    result = apply(svc)

    # engineering lists members: exactly those; ops lists none: left as it was.
    assert members(svc) == {"engineering": ("alice", "bob"), "ops": ("carol",)}
    assert "group engineering: removed carol" in result.changes
    assert "group engineering: added alice" not in result.changes


def test_prune_removes_apps_missing_from_the_file_and_only_then(svc: Services) -> None:
    svc.catalog.add_app("legacy", upstream="http://127.0.0.1:8000", actor="admin:root")

    apply(svc)
    assert svc.catalog.find_app("legacy") is not None

    result = apply(svc, prune=True)

    assert svc.catalog.find_app("legacy") is None
    assert {a.name for a in svc.catalog.list_apps()} == {"whoami", "grafana"}
    assert result.changes == ("app legacy: removed (not in file)",)


def test_dry_run_reports_changes_and_writes_nothing(svc: Services) -> None:
    svc.catalog.add_app("legacy", upstream="http://127.0.0.1:8000", actor="admin:root")
    before = db_state(svc)

    result = apply(svc, prune=True, dry_run=True)

    assert result.version is None
    assert "app whoami: created with upstream http://127.0.0.1:9001" in result.changes
    assert "app legacy: removed (not in file)" in result.changes
    assert db_state(svc) == before


UNKNOWN_GROUP = """\
version: 1
groups:
  - name: ops
apps:
  - name: whoami
    upstream: http://127.0.0.1:9001
    allow:
      groups: [ops, nope]
"""

UNKNOWN_USER = """\
version: 1
groups:
  - name: engineering
    members:
      - alice
      - zed
"""

BAD_UPSTREAM = """\
version: 1
apps:
  - name: whoami
    upstream: ftp://127.0.0.1
"""


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        (UNKNOWN_GROUP, 8, 21, "no group named 'nope'"),
        (UNKNOWN_USER, 6, 9, "no user named 'zed'"),
        (BAD_UPSTREAM, 4, 15, "scheme must be http or https"),
    ],
    ids=["unknown-group", "unknown-user", "bad-upstream"],
)
def test_a_bad_file_names_the_place_and_leaves_the_database_unchanged(
    svc: Services, text: str, line: int, column: int, says: str
) -> None:
    before = db_state(svc)

    with pytest.raises(ConfigFileError) as caught:
        apply(svc, text)

    error = caught.value
    assert (error.file, error.line, error.column) == ("access.yaml", line, column)
    assert says in error.message
    assert error.message.startswith(f"access.yaml:{line}:{column}: ")
    assert error.code == "invalid-config-file"
    # Groups declared earlier in the same file were not half-written.
    assert db_state(svc) == before


def test_groups_can_require_a_second_factor_from_the_file(svc: Services) -> None:
    doc = "groups:\n  - name: finance\n    members: [alice]\n    require_mfa: true\n"
    result = apply(svc, doc)
    assert "group finance: second factor required" in result.changes
    assert svc.auth.must_enrol_mfa(svc.directory.get_user("alice"))
    assert apply(svc, doc).changes == ()  # unchanged the second time

    # Leaving the key out keeps what is set; false turns it off.
    assert apply(svc, "groups:\n  - name: finance\n").changes == ()
    off = apply(svc, "groups:\n  - name: finance\n    require_mfa: false\n")
    assert off.changes == ("group finance: second factor no longer required",)
    assert not svc.auth.must_enrol_mfa(svc.directory.get_user("alice"))


def test_a_non_boolean_require_mfa_is_refused_at_its_line(svc: Services) -> None:
    with pytest.raises(ConfigFileError) as caught:
        apply(svc, "groups:\n  - name: finance\n    require_mfa: sometimes\n")
    assert caught.value.line == 3
