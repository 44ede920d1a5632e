"""Units of work over one SQL transaction, implementing ``nevertrust.ports.UnitOfWork``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection

from nevertrust.bus.events import ChangeEvent
from nevertrust.store._access_repos import SqlApiKeyRepository, SqlBanRepository
from nevertrust.store._audit_repo import SqlAuditRepository
from nevertrust.store._catalog_repos import SqlAppRepository, SqlConfigRepository, SqlRuleRepository
from nevertrust.store._changes_repo import SqlChangeRepository
from nevertrust.store._device_repos import (
    SqlDeviceAuthorityRepository,
    SqlDevicePolicyRepository,
    SqlDeviceRepository,
    SqlDeviceTokenRepository,
)
from nevertrust.store._identity_repos import SqlGroupRepository, SqlUserRepository
from nevertrust.store._keys_repo import SqlKeyRepository
from nevertrust.store._mfa_repos import (
    SqlChallengeRepository,
    SqlRecoveryCodeRepository,
    SqlTotpRepository,
    SqlWebAuthnRepository,
)
from nevertrust.store._policy_repo import SqlPolicyRepository
from nevertrust.store._session_repos import (
    SqlHandoffRepository,
    SqlSessionRepository,
    SqlSetupTokenRepository,
)
from nevertrust.store.database import Database

__all__ = ["ChangeEventSink", "SqlUnitOfWork", "SqlUnitOfWorkFactory"]

ChangeEventSink = Callable[[ChangeEvent], None]


class _RecordingChanges(SqlChangeRepository):
    """Remembers what it recorded so the caller can publish in-process after commit."""

    def __init__(self, conn: Connection, *, is_sqlite: bool, sink: list[ChangeEvent]) -> None:
        super().__init__(conn, is_sqlite=is_sqlite)
        self._sink = sink

    def record(self, event: ChangeEvent, *, now: datetime) -> None:
        super().record(event, now=now)
        self._sink.append(event)


class SqlUnitOfWork:
    def __init__(self, conn: Connection, *, is_sqlite: bool) -> None:
        self.connection = conn
        self._events: list[ChangeEvent] = []
        self.users = SqlUserRepository(conn)
        self.groups = SqlGroupRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.handoffs = SqlHandoffRepository(conn)
        self.setup_tokens = SqlSetupTokenRepository(conn)
        self.apps = SqlAppRepository(conn)
        self.rules = SqlRuleRepository(conn)
        self.configs = SqlConfigRepository(conn)
        self.audit = SqlAuditRepository(conn, is_sqlite=is_sqlite)
        self.changes = _RecordingChanges(conn, is_sqlite=is_sqlite, sink=self._events)
        self.keys = SqlKeyRepository(conn)
        self.policies = SqlPolicyRepository(conn)
        self.totp = SqlTotpRepository(conn)
        self.webauthn = SqlWebAuthnRepository(conn)
        self.recovery_codes = SqlRecoveryCodeRepository(conn)
        self.challenges = SqlChallengeRepository(conn)
        self.bans = SqlBanRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.devices = SqlDeviceRepository(conn)
        self.device_tokens = SqlDeviceTokenRepository(conn)
        self.device_policies = SqlDevicePolicyRepository(conn)
        self.device_authority = SqlDeviceAuthorityRepository(conn)

    @property
    def pending_events(self) -> list[ChangeEvent]:
        return self._events


class SqlUnitOfWorkFactory:
    """Opens units of work; after a write commits, hands its events to ``on_commit``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.on_commit: list[ChangeEventSink] = []

    @contextmanager
    def write(self) -> Iterator[SqlUnitOfWork]:
        with self._db.write() as conn:
            uow = SqlUnitOfWork(conn, is_sqlite=self._db.is_sqlite)
            yield uow
        for sink in self.on_commit:
            for event in uow.pending_events:
                sink(event)

    @contextmanager
    def read(self) -> Iterator[SqlUnitOfWork]:
        with self._db.read() as conn:
            yield SqlUnitOfWork(conn, is_sqlite=self._db.is_sqlite)
