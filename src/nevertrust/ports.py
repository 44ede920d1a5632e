"""The storage contract services are written against; ``nevertrust.store`` implements it.

One unit of work is one database transaction: a change, its change-log row and its audit
record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from nevertrust.apps.ports import AppRepository, ConfigRepository, RuleRepository
from nevertrust.audit.ports import AuditRepository
from nevertrust.bus.events import ChangeEvent
from nevertrust.devices.ports import (
    DeviceAuthorityRepository,
    DevicePolicyRepository,
    DeviceRepository,
    DeviceTokenRepository,
)
from nevertrust.gateway.ports import KeyRepository
from nevertrust.identity.ports import (
    ApiKeyRepository,
    BanRepository,
    ChallengeRepository,
    GroupRepository,
    HandoffRepository,
    RecoveryCodeRepository,
    SessionRepository,
    SetupTokenRepository,
    TotpRepository,
    UserRepository,
    WebAuthnRepository,
)
from nevertrust.policy.ports import PolicyRepository

__all__ = ["ChangeRepository", "UnitOfWork", "UnitOfWorkFactory"]


class ChangeRepository(Protocol):
    def record(self, event: ChangeEvent, *, now: datetime) -> None: ...

    def since(self, last_id: int, *, limit: int = 1000) -> Sequence[tuple[int, ChangeEvent]]: ...

    def last_id(self) -> int: ...


class UnitOfWork(Protocol):
    """One transaction's repositories (read-only members, so implementations may narrow)."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def groups(self) -> GroupRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def handoffs(self) -> HandoffRepository: ...

    @property
    def setup_tokens(self) -> SetupTokenRepository: ...

    @property
    def apps(self) -> AppRepository: ...

    @property
    def rules(self) -> RuleRepository: ...

    @property
    def configs(self) -> ConfigRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def changes(self) -> ChangeRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def policies(self) -> PolicyRepository: ...

    @property
    def totp(self) -> TotpRepository: ...

    @property
    def webauthn(self) -> WebAuthnRepository: ...

    @property
    def recovery_codes(self) -> RecoveryCodeRepository: ...

    @property
    def challenges(self) -> ChallengeRepository: ...

    @property
    def bans(self) -> BanRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def devices(self) -> DeviceRepository: ...

    @property
    def device_tokens(self) -> DeviceTokenRepository: ...

    @property
    def device_policies(self) -> DevicePolicyRepository: ...

    @property
    def device_authority(self) -> DeviceAuthorityRepository: ...

    @property
    def pending_events(self) -> list[ChangeEvent]: ...


class UnitOfWorkFactory(Protocol):
    def write(self) -> AbstractContextManager[UnitOfWork]: ...

    def read(self) -> AbstractContextManager[UnitOfWork]: ...
