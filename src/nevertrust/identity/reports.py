"""Identity hygiene in numbers: second-factor coverage, dormant people, unowned machines.

The report is computed from a consistent read of users, second factors and API keys by a
pure function (``identity_report``), so its arithmetic is tested without a database. The
JSON names produced by ``IdentityReport.to_json`` are a stable interface (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nevertrust.clock import Clock
from nevertrust.errors import InvalidInput
from nevertrust.identity.inventory import build_inventory
from nevertrust.identity.models import ApiKeyRecord, UserKind, UserRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = [
    "DEFAULT_INACTIVE_DAYS",
    "IdentityReport",
    "InactivePerson",
    "ReportService",
    "StaleKeys",
    "UnownedAccount",
    "identity_report",
]

DEFAULT_INACTIVE_DAYS = 45
_MAX_INACTIVE_DAYS = 3650


@dataclass(frozen=True, slots=True)
class InactivePerson:
    name: str
    last_login_at: datetime | None  # None: never signed in
    created_at: datetime
    days_inactive: int


@dataclass(frozen=True, slots=True)
class UnownedAccount:
    name: str
    owner: str | None
    problem: str  # no-owner, owner-missing, owner-not-a-person, owner-disabled


@dataclass(frozen=True, slots=True)
class StaleKeys:
    name: str
    owner: str | None
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IdentityReport:
    generated_at: datetime
    inactive_days: int
    people: int  # enabled person accounts; every figure below about people counts among them
    people_with_mfa: int
    people_with_phishing_resistant_mfa: int
    people_without_mfa: tuple[str, ...]
    inactive_people: tuple[InactivePerson, ...]
    service_accounts: int  # enabled service accounts
    service_accounts_without_owner: tuple[UnownedAccount, ...]
    service_accounts_with_stale_keys: tuple[StaleKeys, ...]

    @property
    def mfa_percent(self) -> float | None:
        return _percent(self.people_with_mfa, self.people)

    @property
    def phishing_resistant_percent(self) -> float | None:
        return _percent(self.people_with_phishing_resistant_mfa, self.people)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (documented field by field in docs/reports.md)."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "inactive_days": self.inactive_days,
            "people": self.people,
            "people_with_mfa": self.people_with_mfa,
            "mfa_percent": self.mfa_percent,
            "people_with_phishing_resistant_mfa": self.people_with_phishing_resistant_mfa,
            "phishing_resistant_percent": self.phishing_resistant_percent,
            "people_without_mfa": list(self.people_without_mfa),
            "inactive_people": [
                {
                    "name": p.name,
                    "last_login_at": p.last_login_at.isoformat() if p.last_login_at else None,
                    "created_at": p.created_at.isoformat(),
                    "days_inactive": p.days_inactive,
                }
                for p in self.inactive_people
            ],
            "service_accounts": self.service_accounts,
            "service_accounts_without_owner": [
                {"name": a.name, "owner": a.owner, "problem": a.problem}
                for a in self.service_accounts_without_owner
            ],
            "service_accounts_with_stale_keys": [
                {"name": a.name, "owner": a.owner, "stale_keys": list(a.prefixes)}
                for a in self.service_accounts_with_stale_keys
            ],
        }


def _percent(part: int, whole: int) -> float | None:
    """One decimal; None when there is nobody to count (0 of 0 is not 0 % nor 100 %)."""
    return None if whole == 0 else round(100 * part / whole, 1)


def identity_report(
    users: Sequence[UserRecord],
    api_keys: Sequence[ApiKeyRecord],
    *,
    totp_user_ids: Collection[int],
    webauthn_user_ids: Collection[int],
    now: datetime,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
) -> IdentityReport:
    """The report for these records at ``now``. Disabled accounts are left out throughout."""
    people = [u for u in users if u.kind is UserKind.PERSON and u.enabled]
    with_mfa = {u.id for u in people if u.id in totp_user_ids or u.id in webauthn_user_ids}
    phishing_resistant = {u.id for u in people if u.id in webauthn_user_ids}
    threshold = timedelta(days=inactive_days)
    inactive = [
        InactivePerson(
            name=u.name,
            last_login_at=u.last_login_at,
            created_at=u.created_at,
            days_inactive=(now - (u.last_login_at or u.created_at)).days,
        )
        for u in people
        if now - (u.last_login_at or u.created_at) >= threshold
    ]
    machines = [a for a in build_inventory(users, api_keys, now) if a.enabled]
    return IdentityReport(
        generated_at=now,
        inactive_days=inactive_days,
        people=len(people),
        people_with_mfa=len(with_mfa),
        people_with_phishing_resistant_mfa=len(phishing_resistant),
        people_without_mfa=tuple(u.name for u in people if u.id not in with_mfa),
        inactive_people=tuple(inactive),
        service_accounts=len(machines),
        service_accounts_without_owner=tuple(
            UnownedAccount(name=a.name, owner=a.owner, problem=a.owner_problem)
            for a in machines
            if a.owner_problem is not None
        ),
        service_accounts_with_stale_keys=tuple(
            StaleKeys(name=a.name, owner=a.owner, prefixes=a.stale_keys)
            for a in machines
            if a.stale_keys
        ),
    )


class ReportService:
    """Reports over the whole directory, for auditors and for the console."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def identity(self, *, inactive_days: int = DEFAULT_INACTIVE_DAYS) -> IdentityReport:
        if not 1 <= inactive_days <= _MAX_INACTIVE_DAYS:
            raise InvalidInput(
                f"inactive_days must be between 1 and {_MAX_INACTIVE_DAYS}, got {inactive_days}",
                field="inactive_days",
            )
        # One transaction, so the counts agree with each other.
        with self._uow.read() as uow:
            users = uow.users.list()
            api_keys = uow.api_keys.list_for_user(None)
            totp_ids = uow.totp.confirmed_user_ids()
            webauthn_ids = uow.webauthn.user_ids()
        return identity_report(
            users,
            api_keys,
            totp_user_ids=totp_ids,
            webauthn_user_ids=webauthn_ids,
            now=self._clock.now(),
            inactive_days=inactive_days,
        )
