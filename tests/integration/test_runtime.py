"""The serving runtime: a CLI change plus a control request reaches the hot-path state."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import pytest

from nevertrust.app import Services
from nevertrust.control import request_sync
from nevertrust.domain import AccessRequest, Decision, Effect, Reason
from nevertrust.gateway import SessionCache
from nevertrust.pdp import decide
from nevertrust.server import Runtime

from ._support import PASSWORD, audit_records, entry


@pytest.fixture
def svc(any_services: Services) -> Services:
    directory = any_services.directory
    directory.add_user("alice", actor="admin:root", password=PASSWORD)
    directory.add_group("engineering", actor="admin:root")
    directory.set_membership("engineering", "alice", True, actor="admin:root")
    any_services.catalog.add_app("whoami", upstream="http://127.0.0.1:9001", actor="admin:root")
    any_services.catalog.set_rule("whoami", "engineering", True, actor="admin:root")
    return any_services


@contextlib.asynccontextmanager
async def running(svc: Services) -> AsyncIterator[Runtime]:
    runtime = Runtime(svc)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def decision_for(runtime: Runtime, user_id: int) -> Decision:
    snapshot = runtime.snapshots.snapshot
    request = AccessRequest(snapshot.principals[user_id], "whoami")
    return decide(request, snapshot.policy, runtime.services.clock.now())


async def test_group_removal_by_another_process_is_visible_after_request_sync(
    svc: Services, peer: Services
) -> None:
    alice = svc.directory.get_user("alice")

    async with running(svc) as runtime:
        assert runtime.snapshots.snapshot.principals[alice.id].groups == {"engineering"}
        assert decision_for(runtime, alice.id).effect is Effect.ALLOW
        before = runtime.snapshots.snapshot.version

        peer.directory.set_membership("engineering", "alice", False, actor="cli")
        answered = await asyncio.to_thread(request_sync, svc.settings.control_socket)

        # No waiting: when the CLI's request returns, the server already holds the change.
        assert answered is True
        snapshot = runtime.snapshots.snapshot
        assert snapshot.version > before
        assert snapshot.principals[alice.id].groups == frozenset()
        decision = decision_for(runtime, alice.id)
        assert (decision.effect, decision.reasons) == (
            Effect.DENY,
            (Reason.NOT_IN_ALLOWED_GROUP,),
        )


async def test_session_revocation_by_another_process_empties_the_session_cache(
    svc: Services, peer: Services
) -> None:
    issued = svc.auth.login("alice", PASSWORD, source_ip="192.0.2.7", user_agent="ua")

    async with running(svc) as runtime:
        runtime.sessions.put(issued.record.id_hash, issued.record)

        peer.sessions.revoke_user_sessions("alice", actor="cli")
        assert await asyncio.to_thread(peer.notify_server) is True

        assert runtime.sessions.get(issued.record.id_hash) is SessionCache.MISSING


async def test_disabling_a_user_elsewhere_denies_at_once(svc: Services, peer: Services) -> None:
    alice = svc.directory.get_user("alice")

    async with running(svc) as runtime:
        peer.directory.set_enabled("alice", False, actor="cli")
        assert await asyncio.to_thread(peer.notify_server) is True

        assert runtime.snapshots.snapshot.principals[alice.id].enabled is False
        assert decision_for(runtime, alice.id).reasons == (Reason.USER_DISABLED,)


async def test_runtime_stops_cleanly_and_flushes_queued_audit_records(svc: Services) -> None:
    async with running(svc):
        assert svc.audit.enqueue(entry("gateway"))
        assert len(asyncio.all_tasks()) > 1  # the change-feed watcher runs

    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert "audit-writer" not in {t.name for t in threading.enumerate()}
    assert audit_records(svc)[-1].actor == "gateway"
    assert not svc.settings.control_socket.exists()
    assert await asyncio.to_thread(request_sync, svc.settings.control_socket) is False
