"""The tamper-evident audit log, checked with ``nevertrust audit verify`` on a real home."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from tests.e2e.conftest import Platform

PASSWORD = "correct horse battery staple"


def _sql(platform: Platform, statement: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(platform.database)) as db, db:
        return db.execute(statement, params).fetchall()


@pytest.mark.slow
def test_audit_verify_passes_after_real_traffic_and_names_modified_and_deleted_records(
    platform: Platform,
) -> None:
    platform.add_user("alice", PASSWORD, "admins")
    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("whoami") + "/")
    platform.login(b, "alice", "wrong password, twice over", form=form)
    response, _ = platform.login(b, "alice", PASSWORD, form=form)
    assert response.status_code == 200
    platform.audit_records(until=lambda rs: any(r["action"] == "pdp:decision:allowed" for r in rs))

    verified = platform.cli("audit", "verify", check=False)
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout

    platform.stop()  # the writer has flushed; nothing else touches the database now
    (count,) = _sql(platform, "SELECT count(*) FROM audit_log")[0]
    assert isinstance(count, int) and count >= 8

    # Change one field of record 3.
    (original,) = _sql(platform, "SELECT reason FROM audit_log WHERE seq = 3")[0]
    _sql(platform, "UPDATE audit_log SET reason = 'x' WHERE seq = 3")
    tampered = platform.cli("audit", "verify", check=False)
    assert tampered.returncode != 0
    assert "TAMPERED" in tampered.stderr
    assert "record 3 modified" in tampered.stderr
    assert "record 4" not in tampered.stderr  # the report points at the culprit only

    # Put it back: the chain verifies again, so the check is about content, not luck.
    _sql(platform, "UPDATE audit_log SET reason = ? WHERE seq = 3", original)
    assert platform.cli("audit", "verify", check=False).returncode == 0

    # Remove a record from the middle.
    middle = count // 2
    _sql(platform, "DELETE FROM audit_log WHERE seq = ?", middle)
    deleted = platform.cli("audit", "verify", check=False)
    assert deleted.returncode != 0
    assert f"record {middle} deleted" in deleted.stderr

    # Cut the newest record off the end: the stored chain head still names it.
    _sql(platform, "DELETE FROM audit_log WHERE seq = ?", count)
    truncated = platform.cli("audit", "verify", check=False)
    assert truncated.returncode != 0
    assert "deleted from the end" in truncated.stderr
