"""The gateway: an identity-aware reverse proxy for ``<app>.<base domain>`` hosts.

Hot path per request: cookie -> session cache -> snapshot principal -> PDP decision ->
queue audit record -> proxy with a signed assertion. The database is touched only when
a session id is seen for the first time by this process (and after it was invalidated).

Before sign-in, every host under the base domain behaves the same (redirect to the
portal), whether an app exists there or not, so probing reveals nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

import anyio.to_thread

from nevertrust.audit import AuditLog
from nevertrust.clock import Clock
from nevertrust.crypto import hash_token, new_token
from nevertrust.domain import AccessRequest, Decision, Effect, Principal, StepUp
from nevertrust.gateway.assertion import ASSERTION_HEADER, AssertionSigner
from nevertrust.gateway.decision_log import decision_entry
from nevertrust.gateway.http import (
    cookie_header,
    header,
    parse_cookies,
    send_html,
    send_redirect,
)
from nevertrust.gateway.pages import render_page
from nevertrust.gateway.proxy import UpstreamError, UpstreamProxy
from nevertrust.gateway.state import ActivityLog, CachedSession, SessionCache, SnapshotHolder
from nevertrust.identity import HandoffService, InvalidHandoff, SessionRecord, SessionService
from nevertrust.pdp import decide
from nevertrust.types import Receive, Scope, Send

__all__ = ["APP_SESSION_COOKIE", "STATE_COOKIE", "Gateway", "GatewayConfig"]

_log = logging.getLogger("nevertrust.gateway")

APP_SESSION_COOKIE = "nt_app_session"
STATE_COOKIE = "_nt_state"
_OUR_COOKIES = frozenset({APP_SESSION_COOKIE, STATE_COOKIE})
_CONTROL_PREFIX = "/.nevertrust/"
_DENY_TITLES = {
    Effect.DENY: "You don't have access to this application",
    Effect.STEP_UP: "This application needs a stronger sign-in",
    Effect.REQUIRE_DEVICE: "This application needs a compliant device",
}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    base_domain: str
    portal_url: str
    scheme: str
    secure_cookies: bool
    app_url: Callable[[str], str]


def _safe_target(target: str) -> str:
    """Only same-host absolute paths; anything else becomes '/' (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return "/"
    if any(ch in target for ch in "\r\n"):
        return "/"
    return target


class Gateway:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        snapshots: SnapshotHolder,
        sessions: SessionCache,
        session_store: SessionService,
        handoff: HandoffService,
        audit: AuditLog,
        signer: AssertionSigner,
        proxy: UpstreamProxy,
        clock: Clock,
        activity: ActivityLog | None = None,
    ) -> None:
        self._config = config
        self._snapshots = snapshots
        self._sessions = sessions
        self._session_store = session_store
        self._handoff = handoff
        self._audit = audit
        self._signer = signer
        self._proxy = proxy
        self._clock = clock
        self._suffix = "." + config.base_domain
        self._activity = activity or ActivityLog()
        self._idle_timeout = session_store.idle_timeout
        self._assertions: dict[tuple[str, int], tuple[str, float]] = {}

    def app_name_for(self, host: str) -> str | None:
        if not host.endswith(self._suffix):
            return None
        label = host[: -len(self._suffix)]
        return label if label and "." not in label else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app_name: str) -> None:
        request_id = os.urandom(8).hex()
        path: str = scope["path"]
        if path.startswith(_CONTROL_PREFIX):
            await self._control(scope, send, app_name, path, request_id)
            return
        cookies = parse_cookies(header(scope, b"cookie"))
        token = cookies.get(APP_SESSION_COOKIE, "")
        session = await self._session(token)
        now = self._clock.now()
        if session is not None and now - self._activity.last(session) >= self._idle_timeout:
            # Idle here, but another replica may have seen it since: ask storage once.
            session = await self._session(token, fresh=True)
            if session is not None and now - session.last_seen >= self._idle_timeout:
                session = None
        if session is None or not session.usable(now) or session.app_name != app_name:
            await self._to_portal(scope, send, app_name, cookies)
            return
        self._activity.seen(session, now)
        snapshot = self._snapshots.snapshot
        principal = snapshot.principals.get(session.user_id)
        if principal is None:
            await self._to_portal(scope, send, app_name, cookies)
            return
        client_ip = scope["client"][0] if scope.get("client") else ""
        request = AccessRequest(
            principal,
            app_name,
            scope["method"],
            path,
            client_ip,
            auth_methods=session.auth_methods,
            auth_time=session.auth_time,
        )
        decision = decide(request, snapshot.policy, now)
        if not decision.allowed:
            # Denials are explained (near misses) for the page and the audit record; the
            # allow path never pays for building those strings.
            decision = decide(request, snapshot.policy, now, explain=True)
        if not self._record(decision, principal, session, app_name, scope, client_ip, request_id):
            await send_html(
                send,
                503,
                render_page(
                    status=503,
                    title="Access temporarily unavailable",
                    message="Access cannot be recorded right now, so it is not granted. "
                    "Try again shortly.",
                    request_id=request_id,
                ),
            )
            return
        if decision.effect is Effect.STEP_UP and decision.step_up and scope["method"] == "GET":
            # Send the user through a fresh sign-in and back to this very URL.
            await self._to_portal(scope, send, app_name, cookies, step_up=decision.step_up)
            return
        if not decision.allowed:
            await send_html(
                send,
                403,
                render_page(
                    status=403,
                    title=_DENY_TITLES.get(decision.effect, _DENY_TITLES[Effect.DENY]),
                    reasons=[
                        (str(r), e)
                        for r, e in zip(decision.reasons, decision.explanations, strict=False)
                    ],
                    rule=decision.rule_id or "",
                    trace=[(t.rule_id, t.failed_condition, t.detail) for t in decision.trace[:10]],
                    links=[
                        ("Portal", self._config.portal_url + "/"),
                        ("Sign out", "/.nevertrust/sign_out"),
                    ],
                    user=principal.name,
                    app=app_name,
                    request_id=request_id,
                ),
            )
            return
        compiled = snapshot.policy.app(app_name)
        assert compiled is not None  # noqa: S101 - allowed implies the app exists
        assertion = self._assertion(
            session, principal.name, principal.groups, principal.email, snapshot.version, app_name
        )
        try:
            await self._proxy.forward(
                upstream=compiled.app.upstream,
                method=scope["method"],
                raw_path=scope.get("raw_path") or path.encode(),
                query=scope.get("query_string", b""),
                headers=scope["headers"],
                extra_headers=[
                    (ASSERTION_HEADER.encode(), assertion.encode()),
                    (b"x-nevertrust-user", principal.name.encode()),
                    (b"x-request-id", request_id.encode()),
                ],
                drop_cookies=_OUR_COOKIES,
                strip_prefix=b"x-nevertrust-",
                client_ip=client_ip,
                original_host=header(scope, b"host") or b"",
                scheme=self._config.scheme,
                receive=receive,
                send=send,
            )
        except UpstreamError as exc:
            await send_html(
                send,
                exc.status,
                render_page(
                    status=exc.status,
                    title="The application is not responding"
                    if exc.status == 504
                    else "The application is unavailable",
                    message=exc.message + ". The platform itself is fine; try again shortly.",
                    user=principal.name,
                    app=app_name,
                    request_id=request_id,
                ),
            )

    # Sessions

    async def _session(self, token: str, *, fresh: bool = False) -> CachedSession | None:
        if not token or len(token) > 100:
            return None
        id_hash = hash_token(token)
        cached = self._sessions.get(id_hash)
        if cached is not SessionCache.MISSING and not fresh:
            return cached  # type: ignore[return-value]
        generation = self._sessions.generation
        record: SessionRecord | None = await anyio.to_thread.run_sync(
            self._session_store.session_by_hash, id_hash
        )
        # The parent must be alive too; revocation of the parent revokes children in the
        # database, so checking the child record is enough.
        return self._sessions.put(id_hash, record, generation=generation)

    def _assertion(
        self,
        session: CachedSession,
        name: str,
        groups: frozenset[str],
        email: str,
        version: int,
        app_name: str,
    ) -> str:
        key = (session.id_hash, version)
        now = self._clock.now()
        stamp = now.timestamp()
        cached = self._assertions.get(key)
        if cached is not None and stamp < cached[1]:
            return cached[0]
        token = self._signer.sign(
            audience=self._config.app_url(app_name),
            subject=str(session.user_id),
            name=name,
            groups=sorted(groups),
            email=email,
            auth_methods=sorted(session.auth_methods),
            auth_time=session.auth_time,
            now=now,
        )
        if len(self._assertions) > 50_000:
            self._assertions.clear()
        # Re-sign once half the lifetime has passed, so upstreams always get >= ttl/2.
        self._assertions[key] = (token, stamp + self._signer.ttl_seconds / 2)
        return token

    # Audit

    def _record(
        self,
        decision: Decision,
        principal: Principal,
        session: CachedSession,
        app_name: str,
        scope: Scope,
        client_ip: str,
        request_id: str,
    ) -> bool:
        return self._audit.enqueue(
            decision_entry(
                decision,
                principal,
                session,
                app_name=app_name,
                method=scope["method"],
                path=scope["path"],
                client_ip=client_ip,
                request_id=request_id,
                now=self._clock.now(),
            )
        )

    # Redirects to and from the portal

    async def _to_portal(
        self,
        scope: Scope,
        send: Send,
        app_name: str,
        cookies: dict[str, str],
        *,
        step_up: StepUp | None = None,
    ) -> None:
        # The raw (still percent-encoded) path: the decoded one may hold characters that
        # are not valid in a URL, and the user must come back to exactly what they asked.
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        full = self._config.app_url(app_name) + target
        state = cookies.get(STATE_COOKIE) or new_token()
        location = (
            f"{self._config.portal_url}/authorize"
            f"?rd={quote(full, safe='')}&state={quote(state, safe='')}"
        )
        if step_up is not None:
            methods = ",".join(sorted(step_up.methods))
            location += f"&methods={quote(methods, safe=',')}&max_age={step_up.max_age_seconds}"
        await send_redirect(
            send,
            location,
            headers=[
                cookie_header(STATE_COOKIE, state, max_age=600, secure=self._config.secure_cookies)
            ],
        )

    async def _control(
        self, scope: Scope, send: Send, app_name: str, path: str, request_id: str
    ) -> None:
        if path == "/.nevertrust/callback":
            await self._callback(scope, send, app_name, request_id)
        elif path == "/.nevertrust/sign_out":
            await send_redirect(send, self._config.portal_url + "/logout")
        else:
            await send_html(
                send, 404, render_page(status=404, title="Not found", request_id=request_id)
            )

    async def _callback(self, scope: Scope, send: Send, app_name: str, request_id: str) -> None:
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        code = (params.get("code") or [""])[0]
        cookies = parse_cookies(header(scope, b"cookie"))
        state = cookies.get(STATE_COOKIE, "")
        client_ip = scope["client"][0] if scope.get("client") else ""
        user_agent = (header(scope, b"user-agent") or b"").decode("latin-1")
        try:
            token, record, target = await anyio.to_thread.run_sync(
                lambda: self._handoff.redeem(
                    code, app_name=app_name, state=state, source_ip=client_ip, user_agent=user_agent
                )
            )
        except InvalidHandoff as exc:
            await send_html(
                send,
                400,
                render_page(
                    status=400,
                    title="Sign-in could not be completed",
                    message=exc.message + ".",
                    links=[("Try again", "/")],
                    request_id=request_id,
                ),
            )
            return
        self._sessions.put(record.id_hash, record)
        path = _safe_target(target)  # the portal stored only path and query
        max_age = max(0, int((record.expires_at - self._clock.now()).total_seconds()))
        await send_redirect(
            send,
            path,
            headers=[
                cookie_header(
                    APP_SESSION_COOKIE, token, max_age=max_age, secure=self._config.secure_cookies
                ),
                cookie_header(STATE_COOKIE, "", max_age=0, secure=self._config.secure_cookies),
            ],
        )
