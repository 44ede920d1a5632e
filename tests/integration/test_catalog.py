"""The app catalog and its access rules, written through the service."""

from __future__ import annotations

import json

import pytest

from nevertrust.app import Services
from nevertrust.apps import InvalidUpstream, UnknownApp
from nevertrust.audit import Action
from nevertrust.bus import ChangeEvent, Topic
from nevertrust.errors import AlreadyExists, InvalidInput
from nevertrust.identity import UnknownGroup

from ._support import audit_records, changes, db_state, last_change_id


@pytest.fixture
def svc(any_services: Services) -> Services:
    any_services.directory.add_group("engineering", actor="admin:root")
    return any_services


def test_add_app_stores_a_normalised_upstream_and_is_audited(svc: Services) -> None:
    start = last_change_id(svc)

    app = svc.catalog.add_app(
        "whoami", upstream="http://127.0.0.1:9001/", actor="admin:root", description="Who"
    )

    assert (app.name, app.upstream, app.description) == ("whoami", "http://127.0.0.1:9001", "Who")
    assert svc.catalog.get_app("whoami") == app
    assert [a.name for a in svc.catalog.list_apps()] == ["whoami"]
    record = audit_records(svc)[-1]
    assert (record.action, record.target) == (Action.APP_CREATED, "app:whoami")
    assert json.loads(record.details) == {"upstream": "http://127.0.0.1:9001"}
    assert changes(svc, after=start) == [ChangeEvent(Topic.APP, "whoami")]


def test_duplicate_or_invalid_apps_are_refused_without_writing(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    before = db_state(svc)

    with pytest.raises(AlreadyExists):
        svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9002", actor="admin:root")
    with pytest.raises(InvalidUpstream):
        svc.catalog.add_app("grafana", upstream="ftp://127.0.0.1", actor="admin:root")
    with pytest.raises(InvalidInput):
        svc.catalog.add_app("auth", upstream="http://127.0.0.1:9001", actor="admin:root")
    with pytest.raises(InvalidInput):
        svc.catalog.add_app("Bad_Name", upstream="http://127.0.0.1:9001", actor="admin:root")

    assert db_state(svc) == before


def test_update_app_changes_the_upstream_and_records_before_and_after(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    start = last_change_id(svc)

    updated = svc.catalog.update_app("whoami", upstream="https://10.0.0.5", actor="admin:root")

    assert updated.upstream == "https://10.0.0.5"
    record = audit_records(svc)[-1]
    assert record.action == Action.APP_UPDATED
    assert json.loads(record.details) == {
        "before": "http://127.0.0.1:9001",
        "after": "https://10.0.0.5",
    }
    assert changes(svc, after=start) == [ChangeEvent(Topic.APP, "whoami")]
    with pytest.raises(UnknownApp):
        svc.catalog.update_app("nope", upstream="http://127.0.0.1", actor="admin:root")


def test_remove_app_deletes_it_with_its_rules(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    svc.catalog.set_rule("whoami", "engineering", True, actor="admin:root")
    start = last_change_id(svc)

    svc.catalog.remove_app("whoami", actor="admin:root")

    assert svc.catalog.find_app("whoami") is None
    assert svc.catalog.list_rules() == []
    assert audit_records(svc)[-1].action == Action.APP_REMOVED
    assert changes(svc, after=start) == [ChangeEvent(Topic.APP, "whoami")]
    with pytest.raises(UnknownApp) as caught:
        svc.catalog.remove_app("whoami", actor="admin:root")
    assert caught.value.code == "unknown-app"


def test_allow_and_disallow_are_idempotent_and_only_changes_are_recorded(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    start = last_change_id(svc)
    audited = len(audit_records(svc))

    allowed = [svc.catalog.set_rule("whoami", "engineering", True, actor="a") for _ in range(2)]
    rules = svc.catalog.list_rules()
    disallowed = [svc.catalog.set_rule("whoami", "engineering", False, actor="a") for _ in range(2)]

    assert (allowed, disallowed) == ([True, False], [True, False])
    assert [(r.rule_id, r.app, r.group, r.origin) for r in rules] == [
        ("allow:whoami:engineering", "whoami", "engineering", "cli")
    ]
    assert svc.catalog.list_rules() == []
    assert [r.action for r in audit_records(svc)[audited:]] == [
        Action.RULE_ADDED,
        Action.RULE_REMOVED,
    ]
    assert changes(svc, after=start) == [ChangeEvent(Topic.RULE, "whoami")] * 2


def test_rules_need_an_existing_app_and_group(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")

    with pytest.raises(UnknownGroup):
        svc.catalog.set_rule("whoami", "nope", True, actor="admin:root")
    with pytest.raises(UnknownApp):
        svc.catalog.set_rule("nope", "engineering", True, actor="admin:root")


def test_view_holds_apps_and_rules_for_the_snapshot(svc: Services) -> None:
    svc.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    svc.catalog.add_app("grafana", upstream="http://127.0.0.1:3000", actor="admin:root")
    svc.catalog.set_rule("grafana", "engineering", True, actor="admin:root")

    view = svc.catalog.view()

    assert sorted(a.name for a in view.apps) == ["grafana", "whoami"]
    assert [(r.rule_id, r.app, r.group) for r in view.rules] == [
        ("allow:grafana:engineering", "grafana", "engineering")
    ]
