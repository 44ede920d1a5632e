"""The composition root: the only place that builds the object graph from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from nevertrust.apps import ApplyService, CatalogService
from nevertrust.audit import AuditLog
from nevertrust.bus import ChangeEvent, MemoryBus
from nevertrust.clock import Clock, SystemClock
from nevertrust.control import request_sync
from nevertrust.crypto import MasterKey, load_or_create_master_key
from nevertrust.devices import DeviceAuthority, DeviceService, EnrolmentService
from nevertrust.devices.browser_binds import BrowserBinding
from nevertrust.gateway import KeyService
from nevertrust.identity import (
    AuthService,
    DirectoryService,
    HandoffService,
    MfaResetService,
    Passwords,
    RecoveryCodeService,
    Regulator,
    ReportService,
    ServiceAccountService,
    SessionService,
    TotpService,
    WebAuthnService,
)
from nevertrust.identity.device_cookies import DeviceCookies
from nevertrust.policy import PolicyService
from nevertrust.regulation_storage import build_regulator
from nevertrust.settings import Settings
from nevertrust.store import Database, SqlUnitOfWorkFactory, upgrade

if TYPE_CHECKING:
    from nevertrust.bus.redis import RedisBus

__all__ = ["Services", "build_services"]


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    uow: SqlUnitOfWorkFactory
    bus: MemoryBus | RedisBus
    master_key: MasterKey
    passwords: Passwords
    directory: DirectoryService
    auth: AuthService
    sessions: SessionService
    handoff: HandoffService
    mfa_reset: MfaResetService
    regulator: Regulator
    totp: TotpService
    recovery_codes: RecoveryCodeService
    webauthn: WebAuthnService
    catalog: CatalogService
    apply: ApplyService
    audit: AuditLog
    keys: KeyService
    policy: PolicyService
    service_accounts: ServiceAccountService
    reports: ReportService
    devices: DeviceService
    device_enrolment: EnrolmentService
    browser_binding: BrowserBinding

    def notify_server(self) -> bool:
        """After a write from another process (the CLI), make a running server catch up."""
        return request_sync(self.settings.control_socket)

    def close(self) -> None:
        self.regulator.close()
        if not isinstance(self.bus, MemoryBus):
            self.bus.close()
        self.db.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    passwords: Passwords | None = None,
    migrate: bool = True,
) -> Services:
    """Construct every service for ``settings``. Migrates the schema unless told not to."""
    clock = clock or SystemClock()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate:
        upgrade(db)
    uow = SqlUnitOfWorkFactory(db)
    passwords = passwords or Passwords()
    master_key = load_or_create_master_key(settings.effective_secret_key_file)
    bus = _build_bus(settings, master_key)

    def publish(event: ChangeEvent) -> None:
        bus.publish(event)

    # Writes made in this process reach this process's caches straight after commit (and,
    # with Redis, every other process's, the CLI's writes included).
    uow.on_commit.append(publish)
    identity = settings.identity
    directory = DirectoryService(
        uow=uow,
        clock=clock,
        passwords=passwords,
        min_password_length=identity.min_password_length,
        min_password_score=identity.min_password_score,
        setup_link_ttl=timedelta(hours=identity.setup_link_ttl_hours),
    )
    regulator = build_regulator(settings, uow=uow, clock=clock, master_key=master_key)
    sessions = SessionService(
        uow=uow, clock=clock, idle_timeout=timedelta(minutes=identity.idle_timeout_minutes)
    )
    auth = AuthService(
        uow=uow,
        clock=clock,
        passwords=passwords,
        regulator=regulator,
        devices=DeviceCookies(master_key),
        sessions=sessions,
        session_lifetime=timedelta(minutes=identity.session_lifetime_minutes),
    )
    device_settings = settings.devices
    authority = DeviceAuthority(uow=uow, clock=clock, master_key=master_key)
    stale_after = timedelta(hours=device_settings.stale_after_hours)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        uow=uow,
        bus=bus,
        master_key=master_key,
        passwords=passwords,
        directory=directory,
        auth=auth,
        sessions=sessions,
        mfa_reset=MfaResetService(uow=uow, clock=clock),
        handoff=HandoffService(
            uow=uow,
            clock=clock,
            sessions=sessions,
            ttl=timedelta(seconds=identity.handoff_code_ttl_seconds),
        ),
        regulator=regulator,
        totp=TotpService(uow=uow, clock=clock, master_key=master_key),
        recovery_codes=RecoveryCodeService(uow=uow, clock=clock),
        webauthn=WebAuthnService(
            uow=uow,
            clock=clock,
            rp_id=settings.webauthn_rp_id,
            rp_name=identity.webauthn_rp_name,
            origin=settings.portal_url,
        ),
        catalog=CatalogService(uow=uow, clock=clock),
        apply=ApplyService(uow=uow, clock=clock),
        audit=AuditLog(
            uow=uow,
            flush_interval=settings.audit.flush_interval_ms / 1000,
            queue_limit=settings.audit.queue_limit,
        ),
        keys=KeyService(uow=uow, clock=clock, master_key=master_key),
        policy=PolicyService(uow=uow, clock=clock),
        service_accounts=ServiceAccountService(uow=uow, clock=clock, directory=directory),
        reports=ReportService(uow=uow, clock=clock),
        devices=DeviceService(uow=uow, clock=clock, authority=authority, stale_after=stale_after),
        device_enrolment=EnrolmentService(
            uow=uow,
            clock=clock,
            authority=authority,
            token_ttl=timedelta(minutes=device_settings.enrolment_token_minutes),
            certificate_lifetime=timedelta(hours=device_settings.certificate_hours),
            report_max_age=timedelta(seconds=device_settings.report_max_age_seconds),
            stale_after=stale_after,
        ),
        browser_binding=BrowserBinding(
            uow=uow,
            clock=clock,
            window=timedelta(seconds=device_settings.report_max_age_seconds),
        ),
    )


def _build_bus(settings: Settings, master_key: MasterKey) -> MemoryBus | RedisBus:
    """In-process by default; Redis pub/sub when configured, for several replicas."""
    if not settings.redis_url:
        return MemoryBus()
    # Imported here: commands that never touch Redis start without loading it.
    from nevertrust.bus.redis import RedisBus, channel_for

    return RedisBus(settings.redis_url, channel=channel_for(master_key))
