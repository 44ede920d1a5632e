"""One access check shared by every enforcement point: the built-in proxy, websockets,
TCP tunnels and the forward-auth endpoints that nginx, Caddy, Traefik and Envoy call.

Sharing it is the point: a rule, a revocation or an idle timeout must mean the same thing
whichever door a request came through (forward-auth bypass bugs in peers came from each
door re-implementing the check). The check is split so the common case stays synchronous
and allocation-light: ``cached_session`` answers from memory or says it needs storage,
``load_session`` does that one read off the event loop, and ``evaluate`` decides, records
the decision for audit and returns a small ``Check`` value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Final

import anyio.to_thread

from nevertrust.audit import AuditLog
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token
from nevertrust.domain import AccessRequest, Decision, Effect, Principal, StepUp
from nevertrust.gateway.assertion import AssertionSigner
from nevertrust.gateway.client_certs import ClientDevice
from nevertrust.gateway.decision_log import decision_entry
from nevertrust.gateway.devices import DeviceDirectory
from nevertrust.gateway.state import ActivityLog, CachedSession, SessionCache, SnapshotHolder
from nevertrust.identity import SessionRecord, SessionService
from nevertrust.pdp import decide

__all__ = ["NEEDS_STORAGE", "AccessChecker", "Check", "Outcome", "storage_unavailable"]

_log = logging.getLogger("nevertrust.gateway")


class Outcome(IntEnum):
    ALLOW = 0
    SIGN_IN = 1  # no usable session for this app: send the browser to the portal
    STEP_UP = 2  # allowed after a fresher or stronger sign-in (GET only)
    DENY = 3
    UNAVAILABLE = 4  # the decision cannot be made or recorded: fail closed


@dataclass(frozen=True, slots=True)
class Check:
    outcome: Outcome
    decision: Decision | None = None
    principal: Principal | None = None
    session: CachedSession | None = None
    step_up: StepUp | None = None
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


class _NeedsStorage:
    __slots__ = ()


NEEDS_STORAGE: Final = _NeedsStorage()
_SIGN_IN = Check(Outcome.SIGN_IN)
_MAX_TOKEN = 100


class AccessChecker:
    def __init__(
        self,
        *,
        snapshots: SnapshotHolder,
        sessions: SessionCache,
        session_store: SessionService,
        audit: AuditLog,
        signer: AssertionSigner,
        clock: Clock,
        activity: ActivityLog,
        app_url: Callable[[str], str],
        devices: DeviceDirectory | None = None,
    ) -> None:
        self._snapshots = snapshots
        self._sessions = sessions
        self._session_store = session_store
        self._audit = audit
        self._signer = signer
        self._clock = clock
        self._activity = activity
        self._idle_timeout: timedelta = session_store.idle_timeout
        self._app_url = app_url
        self._devices = devices
        self._assertions: dict[tuple[str, int, str], tuple[str, float]] = {}

    @property
    def snapshots(self) -> SnapshotHolder:
        return self._snapshots

    # Sessions

    def cached_session(self, token: str, now: datetime) -> CachedSession | None | _NeedsStorage:
        """The session for ``token`` from memory; NEEDS_STORAGE when only storage can say
        (first sight of this id, or idle here while another replica may have seen it)."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        cached = self._sessions.get(hash_token(token))
        if cached is SessionCache.MISSING:
            return NEEDS_STORAGE
        if cached is None:
            return None
        session: CachedSession = cached  # type: ignore[assignment]
        if now - self._activity.last(session) >= self._idle_timeout:
            return NEEDS_STORAGE
        return session

    async def load_session(self, token: str, now: datetime) -> CachedSession | None:
        """Read the session from storage (a cache miss, or an idle check). Raises when
        storage is unreachable; callers turn that into UNAVAILABLE, never into access."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        id_hash = hash_token(token)
        generation = self._sessions.generation
        record: SessionRecord | None = await anyio.to_thread.run_sync(
            self._session_store.session_by_hash, id_hash
        )
        session = self._sessions.put(id_hash, record, generation=generation)
        if session is not None and now - session.last_seen >= self._idle_timeout:
            activity = self._activity.last(session)
            if now - activity >= self._idle_timeout:
                return None
        return session

    async def session(self, token: str) -> CachedSession | None:
        now = self._clock.now()
        found = self.cached_session(token, now)
        if found is NEEDS_STORAGE:
            return await self.load_session(token, now)
        return found  # type: ignore[return-value]

    def remember(self, record: SessionRecord) -> None:
        self._sessions.put(record.id_hash, record)

    # Decisions

    def evaluate(
        self,
        session: CachedSession | None,
        *,
        app_name: str,
        method: str,
        path: str,
        client_ip: str,
        request_id: str,
        now: datetime,
        record: bool = True,
        client_device: ClientDevice | None = None,
    ) -> Check:
        """Decide and record one request whose session is already resolved."""
        if session is None or not session.usable(now) or session.app_name != app_name:
            return _SIGN_IN
        snapshot = self._snapshots.snapshot
        principal = snapshot.principals.get(session.user_id)
        if principal is None:
            return _SIGN_IN
        self._activity.seen(session, now)
        device = None
        if self._devices is not None:
            # A device certificate on the connection speaks for itself; without one, a
            # browser session bound by a device's platform passkey names its device.
            if client_device is not None:
                device = self._devices.state_for(client_device, session.user_id, now)
            else:
                device = self._devices.state_for_session(session.device_id, session.user_id, now)
        request = AccessRequest(
            principal,
            app_name,
            method,
            path,
            client_ip,
            auth_methods=session.auth_methods,
            auth_time=session.auth_time,
            device=device,
        )
        decision = decide(request, snapshot.policy, now)
        if not decision.allowed:
            # Denials are explained (near misses) for the page and the audit record; the
            # allow path never pays for building those strings.
            decision = decide(request, snapshot.policy, now, explain=True)
        recorded = not record or self._audit.enqueue(
            decision_entry(
                decision,
                principal,
                session,
                app_name=app_name,
                method=method,
                path=path,
                client_ip=client_ip,
                request_id=request_id,
                now=now,
                device=device,
            )
        )
        if not recorded:
            return Check(
                Outcome.UNAVAILABLE,
                decision,
                principal,
                session,
                message="Access cannot be recorded right now, so it is not granted. "
                "Try again shortly.",
            )
        if decision.allowed:
            return Check(Outcome.ALLOW, decision, principal, session)
        if decision.effect is Effect.STEP_UP and decision.step_up and method == "GET":
            return Check(Outcome.STEP_UP, decision, principal, session, step_up=decision.step_up)
        return Check(Outcome.DENY, decision, principal, session)

    async def check(
        self,
        token: str,
        *,
        app_name: str,
        method: str,
        path: str,
        client_ip: str,
        request_id: str,
        record: bool = True,
        client_device: ClientDevice | None = None,
    ) -> Check:
        """Resolve the session (reading storage only when needed) and decide."""
        now = self._clock.now()
        found = self.cached_session(token, now)
        if found is NEEDS_STORAGE:
            try:
                found = await self.load_session(token, now)
            except Exception:  # noqa: BLE001 - storage down: deny, explain, keep serving
                _log.exception("session_lookup_failed")
                return storage_unavailable()
        return self.evaluate(
            found,  # type: ignore[arg-type]
            app_name=app_name,
            method=method,
            path=path,
            client_ip=client_ip,
            request_id=request_id,
            now=now,
            record=record,
            client_device=client_device,
        )

    # Assertions

    def assertion(self, check: Check, app_name: str) -> str:
        """The signed identity assertion for an allowed check, re-signed at half-life."""
        session, principal = check.session, check.principal
        assert session is not None and principal is not None  # noqa: S101 - allowed checks carry both
        key = (session.id_hash, self._snapshots.snapshot.version, app_name)
        now = self._clock.now()
        stamp = now.timestamp()
        cached = self._assertions.get(key)
        if cached is not None and stamp < cached[1]:
            return cached[0]
        token = self._signer.sign(
            audience=self._app_url(app_name),
            subject=str(session.user_id),
            name=principal.name,
            groups=sorted(principal.groups),
            email=principal.email,
            auth_methods=sorted(session.auth_methods),
            auth_time=session.auth_time,
            now=now,
        )
        if len(self._assertions) > 50_000:
            self._assertions.clear()
        # Re-sign once half the lifetime has passed, so upstreams always get >= ttl/2.
        self._assertions[key] = (token, stamp + self._signer.ttl_seconds / 2)
        return token


def storage_unavailable() -> Check:
    return Check(
        Outcome.UNAVAILABLE,
        message="Your sign-in cannot be checked right now, so access is not granted. "
        "Try again shortly.",
    )
