"""``nevertrust apply -f FILE`` against a running server: all or nothing, with locations."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Platform

PASSWORD = "correct horse battery staple"


def _state(platform: Platform) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        json.loads(platform.cli("apps", "list", "--json").stdout),
        json.loads(platform.cli("groups", "list", "--json").stdout),
    )


@pytest.mark.slow
def test_apply_publishes_a_group_app_and_rule_that_the_gateway_enforces_at_once(
    platform: Platform, tmp_path: Path
) -> None:
    platform.add_user("carol", PASSWORD)
    file = tmp_path / "access.yaml"
    file.write_text(
        "version: 1\n"
        "groups:\n"
        "  - name: engineering\n"
        "    members: [carol]\n"
        "apps:\n"
        "  - name: notes\n"
        f"    upstream: http://127.0.0.1:{platform.demo_port}\n"
        "    allow:\n"
        "      groups: [engineering]\n"
    )

    result = platform.cli("apply", "-f", str(file))

    assert "applied as config version" in result.stdout
    apps, groups = _state(platform)
    notes = next(a for a in apps if a["name"] == "notes")
    assert notes["allowed_groups"] == ["engineering"]
    assert notes["url"] == platform.app_url("notes")
    assert {"name": "engineering", "description": "", "members": ["carol"]} in groups
    # Applying the same file again changes nothing.
    assert "no changes" in platform.cli("apply", "-f", str(file)).stdout

    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("notes") + "/")
    response, hops = platform.login(b, "carol", PASSWORD, form=form)
    assert hops[-1].url == platform.app_url("notes") + "/"
    # The gateway let carol through. The demo upstream behind 'notes' checks that the
    # assertion was minted for whoami and refuses one meant for another app (audience).
    assert response.status_code == 401
    assert response.json()["error"] == "invalid-assertion"
    assert "audience" in response.json()["detail"].lower()
    records = platform.audit_records(
        until=lambda rs: any(r["action"] == "pdp:decision:allowed" for r in rs)
    )
    assert any(
        (r["action"], r["actor"], r["target"])
        == ("pdp:decision:allowed", "user:carol", "app:notes")
        for r in records
    )
    assert any(r["action"] == "catalog:config:applied" for r in records)


# (file text, line, column, what the message says); one server for the whole table.
BAD_FILES = [
    (
        "groups:\n  - name: ok-group\napps:\n  - name: notes\n    upstream: ftp://127.0.0.1:9\n",
        5,
        15,
        "upstream",
    ),
    (
        "groups:\n"
        "  - name: ok-group\n"
        "apps:\n"
        "  - name: notes\n"
        "    upstream: http://127.0.0.1:9\n"
        "    allow:\n"
        "      groups: [ok-group, ghosts]\n",
        7,
        26,
        "no group named 'ghosts'",
    ),
    ("groups:\n  - name: ok-group\n    members: [nobody]\n", 3, 15, "no user named 'nobody'"),
    ("groups:\n  - name: ok-group\n    colour: red\n", 3, 5, "colour"),
    ("groups:\n  - name: a\n  - name: a\n", 3, 11, "declared twice"),
    ("apps:\n  - name: notes\n    upstream: [unclosed\n", 4, 1, "not valid YAML"),
]

_TABLES = ("users", "groups", "group_members", "apps", "access_rules", "config_versions")


def _database_state(platform: Platform) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(platform.database)) as db:
        state = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in _TABLES}  # noqa: S608
        state["audit_log"] = db.execute("SELECT max(seq) FROM audit_log").fetchall()
        state["change_log"] = db.execute("SELECT max(id) FROM change_log").fetchall()
    return state


@pytest.mark.slow
def test_apply_of_a_bad_file_names_line_and_column_and_changes_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    before = _database_state(platform)
    file = tmp_path / "access.yaml"
    for text, line, column, message in BAD_FILES:
        file.write_text(text)

        result = platform.cli("apply", "-f", str(file), check=False)

        assert result.returncode != 0, text
        assert result.stdout == "", text
        first = result.stderr.strip().splitlines()[0]
        found = re.search(re.escape(str(file)) + r":(\d+):(\d+): (.*)$", first)
        assert found, result.stderr
        assert (int(found.group(1)), int(found.group(2))) == (line, column), first
        assert message in found.group(3), first
        assert _database_state(platform) == before, text
