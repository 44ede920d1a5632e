"""Handing a portal sign-in to an app host (Pomerium-style callback).

App hosts never see the portal's cookie. Instead the portal mints a one-time code bound to
the portal session, the app and a state cookie on the app host; the app host exchanges it
for a child session of its own. Revoking the portal session revokes every child.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.clock import Clock
from nevertrust.crypto import constant_time_equal, hash_token, new_token
from nevertrust.identity.errors import InvalidHandoff
from nevertrust.identity.models import HandoffRecord, SessionKind, SessionRecord
from nevertrust.identity.sessions import SessionService

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = ["HandoffService"]


class HandoffService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, sessions: SessionService, ttl: timedelta
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sessions = sessions
        self._handoff_ttl = ttl

    def issue(self, session: SessionRecord, *, app_name: str, target: str, state: str) -> str:
        """A one-time code the app host exchanges for its own host-only session cookie."""
        code = new_token()
        with self._uow.write() as uow:
            uow.handoffs.insert(
                HandoffRecord(
                    code_hash=hash_token(code),
                    session_hash=session.id_hash,
                    app_name=app_name,
                    target=target,
                    state_hash=hash_token(state),
                    expires_at=self._clock.now() + self._handoff_ttl,
                )
            )
        return code

    def issue_for_app_session(self, app_session_hash: str, *, app_name: str, state: str) -> str:
        """A one-time code for another client of the person behind an app session (the
        ``nevertrust connect`` command line), redeemed like any code with ``state``.

        The code is bound to the *portal* session that app session descends from, so what
        it is exchanged for is a new child of that portal session: signing out or revoking
        the portal session ends it too. Only a live app session of this app may ask.
        """
        now = self._clock.now()
        code = new_token()
        with self._uow.write() as uow:
            app_session = uow.sessions.get(app_session_hash)
            if (
                app_session is None
                or app_session.kind is not SessionKind.APP
                or app_session.app_name != app_name
                or app_session.parent_hash is None
                or not self._sessions.alive(app_session, now)
            ):
                raise InvalidHandoff("the app session has ended: sign in again")
            parent = uow.sessions.get(app_session.parent_hash)
            if parent is None or not self._sessions.alive(parent, now):
                raise InvalidHandoff("the portal session has ended")
            uow.handoffs.insert(
                HandoffRecord(
                    code_hash=hash_token(code),
                    session_hash=parent.id_hash,
                    app_name=app_name,
                    target="/",
                    state_hash=hash_token(state),
                    expires_at=now + self._handoff_ttl,
                )
            )
        return code

    def redeem(
        self, code: str, *, app_name: str, state: str, source_ip: str, user_agent: str
    ) -> tuple[str, SessionRecord, str]:
        """Exchange a code for an app session: (cookie token, record, original target).

        The code must be unused, unexpired, minted for this app, and presented by the
        browser that started the flow (the state cookie), or the exchange fails.
        """
        now = self._clock.now()
        token = new_token()
        with self._uow.write() as uow:
            handoff = uow.handoffs.redeem(hash_token(code), now=now) if code else None
            if handoff is None:
                raise InvalidHandoff("sign-in link expired or already used")
            if handoff.app_name != app_name or not constant_time_equal(
                handoff.state_hash, hash_token(state)
            ):
                raise InvalidHandoff("sign-in link does not belong to this browser or app")
            parent = uow.sessions.get(handoff.session_hash)
            if parent is None or not self._sessions.alive(parent, now):
                raise InvalidHandoff("the portal session has ended")
            record = SessionRecord(
                id_hash=hash_token(token),
                user_id=parent.user_id,
                kind=SessionKind.APP,
                parent_hash=parent.id_hash,
                app_name=app_name,
                auth_methods=parent.auth_methods,
                auth_time=parent.auth_time,
                created_at=now,
                expires_at=parent.expires_at,
                revoked_at=None,
                source_ip=source_ip,
                user_agent=user_agent,
                last_seen_at=now,
                device_id=parent.device_id,  # the same browser, so the same device
            )
            uow.sessions.insert(record)
            user = uow.users.get_by_id(parent.user_id)
            uow.audit.append(
                [
                    AuditEntry(
                        ts=now,
                        actor=f"user:{user.name if user else parent.user_id}",
                        action=Action.APP_SESSION_ISSUED,
                        outcome=Outcome.SUCCESS,
                        target=f"app:{app_name}",
                        source=source_ip,
                        details={"parent": parent.id_hash[:12]},
                    ),
                ]
            )
        return token, record, handoff.target
