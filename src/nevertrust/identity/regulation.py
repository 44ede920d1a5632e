"""Brute-force regulation of sign-in: count failures, ban on excess, let admins lift bans.

Authelia's model (``max_retries`` failures within ``find_time`` ban for ``ban_time``),
applied to two subjects per attempt:

- ``user:NAME``, the name as typed (lower-cased), whether or not such a user exists, so
  that bans say nothing about which accounts exist. This stops guessing one account's
  password from many addresses.
- ``ip:ADDRESS``, the source address; IPv6 by /64, the block one subscriber usually holds,
  so that walking the addresses of one network does not start a fresh count. This stops
  password spraying (a few guesses against many names) from one place.

Failures are counted in a moving window by a ``FailureCounter``: process memory, or Redis
shared by every replica (``nevertrust.regulation_storage``). Bans are database rows, so the
CLI and every replica see them at once.

Counters are keyed by subject *and generation*, the id of the subject's newest ban row, and
attempts refused during a ban are not counted. A ban therefore always ends (by expiry or by
an admin's lift) with a fresh count, in every replica, even one whose counters live in its
own memory and that never heard of the lift.

Fail closed: when the counter store or the database cannot be reached, ``banned`` answers
True and logs an error, so no attempt goes through unregulated.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from nevertrust.audit.models import Action, AuditEntry, Outcome
from nevertrust.clock import Clock
from nevertrust.errors import BackendUnavailable, InvalidInput
from nevertrust.identity.models import BanRecord

if TYPE_CHECKING:
    from nevertrust.ports import UnitOfWorkFactory

__all__ = [
    "FailureCounter",
    "InvalidBanSubject",
    "Limit",
    "RegulationPolicy",
    "RegulationUnavailable",
    "Regulator",
    "counter_key",
    "device_subject",
    "ip_subject",
    "parse_subject",
    "user_subject",
]

_log = logging.getLogger("nevertrust.regulation")

# Who bans: the platform itself, not a person.
_ACTOR = "system:regulation"
_MAX_NAME = 64  # longer names are never valid user names (login treats them as unknown)


class InvalidBanSubject(InvalidInput):
    code = "invalid-ban-subject"


class RegulationUnavailable(BackendUnavailable):
    """The failure-counter store (Redis) cannot be reached."""

    code = "regulation-unavailable"


@dataclass(frozen=True, slots=True)
class Limit:
    """``max_retries`` failures within ``find_time`` ban the subject for ``ban_time``."""

    max_retries: int
    find_time: timedelta
    ban_time: timedelta

    def __post_init__(self) -> None:
        if self.max_retries < 1 or self.find_time.total_seconds() < 1:
            raise ValueError("a limit needs max_retries >= 1 and find_time >= 1 s")

    @property
    def find_seconds(self) -> int:
        return int(self.find_time.total_seconds())


@dataclass(frozen=True, slots=True)
class RegulationPolicy:
    user: Limit
    ip: Limit
    enabled: bool = True

    def limit_for(self, subject: str) -> Limit:
        return self.ip if subject.startswith("ip:") else self.user


# Subjects: one spelling per name and address, whoever writes it (login, CLI, API).


def user_subject(username: str) -> str:
    """``user:NAME`` for a name as typed: trimmed, lower-cased, at most 64 characters."""
    return "user:" + (username.strip().lower()[:_MAX_NAME] or "-")


def device_subject(device_id: str) -> str:
    """``device:ID`` for a browser with a valid device cookie (see ``device_cookies``)."""
    return "device:" + (device_id.strip()[:_MAX_NAME] or "-")


def name_subject(username: str, device: str | None) -> str:
    """The subject an attempt counts against besides its address: the device if known."""
    return device_subject(device) if device else user_subject(username)


def ip_subject(source_ip: str) -> str:
    """``ip:ADDRESS`` for a client address; IPv6 as its /64, IPv4-mapped IPv6 as IPv4.

    A source that is not an address (a test client's name, nothing at all) is kept as
    written, so it is still regulated, under its own name.
    """
    text = source_ip.strip().lower()
    candidate = text.removeprefix("[").removesuffix("]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return "ip:" + (text[:_MAX_NAME] or "unknown")
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def parse_subject(text: str) -> str:
    """An admin's ``user:NAME`` or ``ip:ADDRESS`` (or ``ip:V6/64``) in its stored spelling."""
    kind, sep, value = text.strip().partition(":")
    value = value.strip()
    if sep and value and kind.lower() == "user":
        return user_subject(value)
    if sep and value and kind.lower() == "device":
        return device_subject(value)
    if sep and value and kind.lower() == "ip":
        address, slash, prefix = value.partition("/")
        if slash and prefix != "64":
            raise InvalidBanSubject(
                f"ban subject {text!r} is invalid: expected an address or an IPv6 /64 network"
            )
        subject = ip_subject(address)
        if slash and not subject.endswith("/64"):
            raise InvalidBanSubject(f"ban subject {text!r} is invalid: /64 is for IPv6 only")
        return subject
    raise InvalidBanSubject(
        f"ban subject {text!r} is invalid: expected user:NAME, ip:ADDRESS or device:ID"
    )


def counter_key(subject: str, newest_ban: BanRecord | None) -> str:
    """The counter of a subject's current generation (see the module docstring)."""
    return f"{subject}#{newest_ban.id if newest_ban is not None else 0}"


class FailureCounter(Protocol):
    """Failures per key in a moving window (``limits`` over memory or Redis).

    Methods raise ``RegulationUnavailable`` when the store cannot be reached.
    """

    def check(self) -> None:
        """Raise unless the store answers."""
        ...

    def hit(self, key: str, limit: Limit) -> int:
        """Record one failure; return the failures now in the window (at most max_retries)."""
        ...

    def clear(self, key: str, limit: Limit) -> None: ...

    def close(self) -> None: ...


class Regulator:
    """Decides whether a sign-in may be attempted, and bans on repeated failure.

    Thread-safe: the counter store and the unit of work are; the lock only keeps two
    threads of one process from banning the same subject twice.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        counter: FailureCounter,
        policy: RegulationPolicy,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._counter = counter
        self._policy = policy
        self._ban_lock = threading.Lock()

    @property
    def policy(self) -> RegulationPolicy:
        return self._policy

    def banned(self, username: str, source_ip: str, *, device: str | None = None) -> bool:
        """Whether ``user:NAME`` (or ``device:ID`` for a known browser) or ``ip:ADDRESS``
        is banned; True when that is unknowable."""
        if not self._policy.enabled:
            return False
        subjects = [name_subject(username, device), ip_subject(source_ip)]
        try:
            # The counter store must answer too: without it failures would go uncounted.
            self._counter.check()
            with self._uow.read() as uow:
                return bool(uow.bans.active_for(subjects, now=self._clock.now()))
        except Exception:  # noqa: BLE001 - any failure means "cannot tell": fail closed
            _log.error("sign-in regulation unavailable: refusing the attempt", exc_info=True)
            return True

    def record_failure(self, username: str, source_ip: str, *, device: str | None = None) -> None:
        """Count a failed attempt against the name and the address; ban either on excess.

        Never raises: if counting fails, the error is logged and ``banned`` refuses every
        attempt until the store is back (that is the fail-closed half).
        """
        if not self._policy.enabled:
            return
        try:
            self._count(name_subject(username, device), source_ip)
        except Exception:  # noqa: BLE001 - login must answer alike; banned() now refuses
            _log.error("sign-in failure could not be counted", exc_info=True)

    def record_success(self, username: str, source_ip: str, *, device: str | None = None) -> None:
        """Forget the name's (or device's) failures. The address keeps its count: one good
        account must not let its holder reset a spraying run against everyone else."""
        if not self._policy.enabled:
            return
        subject = name_subject(username, device)
        try:
            self._counter.clear(self._key(subject), self._policy.user)
        except Exception:  # noqa: BLE001 - the sign-in succeeded; old failures stay
            # Keeping old failures is the stricter outcome, so this only gets logged.
            _log.error("sign-in failures of %s could not be reset", subject, exc_info=True)

    def list_bans(self) -> Sequence[BanRecord]:
        """Bans in force, oldest first."""
        with self._uow.read() as uow:
            return uow.bans.list_active(now=self._clock.now())

    def lift(self, subject: str, *, actor: str) -> int:
        """End the bans of ``user:NAME`` / ``ip:ADDRESS`` and clear its failures.

        Returns how many bans ended (0 when none was in force: the failures are still
        cleared). Audited either way.
        """
        subject = parse_subject(subject)
        limit = self._policy.limit_for(subject)
        # Counters first: if Redis is down this raises, nothing has changed, the admin retries.
        self._counter.clear(self._key(subject), limit)
        now = self._clock.now()
        with self._uow.write() as uow:
            lifted = uow.bans.lift(subject, by=actor, now=now)
            uow.audit.append(
                [
                    AuditEntry(
                        ts=now,
                        actor=actor,
                        action=Action.BAN_LIFTED,
                        outcome=Outcome.SUCCESS,
                        target=subject,
                        details={"bans": lifted},
                    )
                ]
            )
        return lifted

    def close(self) -> None:
        self._counter.close()

    # Internals

    def _key(self, subject: str) -> str:
        with self._uow.read() as uow:
            newest = next(iter(uow.bans.latest([subject])), None)
        return counter_key(subject, newest)

    def _count(self, name: str, source_ip: str) -> None:
        subjects = [name, ip_subject(source_ip)]
        now = self._clock.now()
        with self._uow.read() as uow:
            newest = {b.subject: b for b in uow.bans.latest(subjects)}
        for subject in subjects:
            ban = newest.get(subject)
            if ban is not None and ban.active(now):
                continue  # refused while banned: not a guess, and no reason to extend
            limit = self._policy.limit_for(subject)
            failures = self._counter.hit(counter_key(subject, ban), limit)
            if failures >= limit.max_retries:
                self._ban(subject, limit, failures, now=now, source_ip=source_ip)

    def _ban(
        self, subject: str, limit: Limit, failures: int, *, now: datetime, source_ip: str
    ) -> None:
        until = now + limit.ban_time
        with self._ban_lock, self._uow.write() as uow:
            if uow.bans.active_for([subject], now=now):
                return  # another thread or replica got there first
            ban_id = uow.bans.insert(
                subject=subject,
                reason=f"{failures} failed sign-ins within {limit.find_seconds} s",
                failures=failures,
                now=now,
                expires_at=until,
            )
            uow.audit.append(
                [
                    AuditEntry(
                        ts=now,
                        actor=_ACTOR,
                        action=Action.BAN_CREATED,
                        outcome=Outcome.SUCCESS,
                        target=subject,
                        source=source_ip,
                        reason="too-many-failures",
                        details={
                            "ban": ban_id,
                            "failures": failures,
                            "find_time_seconds": limit.find_seconds,
                            "until": until.isoformat(),
                        },
                    )
                ]
            )
        _log.warning("sign-in ban on %s until %s after %d failures", subject, until, failures)
