"""Running the platform: the hot-path runtime around the services, and uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
import sys
from collections.abc import Iterator
from datetime import timedelta

import uvicorn

from nevertrust.app import Services
from nevertrust.bus import MemoryBus
from nevertrust.control import ControlServer
from nevertrust.demo import WhoAmI
from nevertrust.domain import AccessRule, App, Principal
from nevertrust.gateway import (
    ActivityLog,
    Gateway,
    GatewayConfig,
    SessionCache,
    SnapshotHolder,
    UpstreamProxy,
)
from nevertrust.gateway.access import AccessChecker
from nevertrust.gateway.authz_server import AuthzServer
from nevertrust.gateway.cli_login import CliLogin
from nevertrust.gateway.devices import DeviceDirectory
from nevertrust.gateway.forward_auth import ForwardAuth
from nevertrust.gateway.live import LiveConnections
from nevertrust.gateway.mtls_listener import ServerCertificate
from nevertrust.gateway.signing import SigningKeyRing, maintain_signing_keys
from nevertrust.gateway.tunnel import TunnelServer
from nevertrust.pdp import PolicyDocument
from nevertrust.store.feed import ChangeFeedWatcher
from nevertrust.web.api import build_api
from nevertrust.web.asgi import HostRouter
from nevertrust.web.portal import PortalContext, build_portal

__all__ = ["MtlsServer", "Runtime", "mtls_config", "run", "serve", "uvicorn_config"]

_log = logging.getLogger("nevertrust.server")


class Runtime:
    """Everything a serving process holds beyond the services: caches, feed, writer."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings

        def source() -> tuple[list[App], list[AccessRule], list[Principal], PolicyDocument | None]:
            view = services.catalog.view()
            return (
                list(view.apps),
                list(view.rules),
                services.directory.principals(),
                services.policy.active_document(),
            )

        self.snapshots = SnapshotHolder(source)
        self.sessions = SessionCache(max_entries=settings.gateway.session_cache_size)
        services.bus.subscribe(self.snapshots.on_event)
        services.bus.subscribe(self.sessions.on_event)
        bus = services.bus
        # The feed brings changes every process can read for itself: deliver them here
        # only, never re-broadcast them on Redis.
        self.watcher = ChangeFeedWatcher(
            db=services.db,
            uow=services.uow,
            publish=bus.publish if isinstance(bus, MemoryBus) else bus.deliver,
        )
        self.control = ControlServer(path=settings.control_socket, sync=self.watcher.sync)
        gateway_settings = settings.gateway
        self.proxy = UpstreamProxy(
            timeout=gateway_settings.upstream_timeout_seconds,
            connect_timeout=gateway_settings.upstream_connect_timeout_seconds,
            pool_size=gateway_settings.upstream_pool_size,
            ca_file=gateway_settings.upstream_ca_file,
        )
        self.activity = ActivityLog()
        # The assertion signer follows the active signing key: reloaded off the request
        # path on a signing-key change event (a rotation by the CLI, API or a replica).
        self.signer = SigningKeyRing(
            load=services.keys.active,
            issuer=settings.portal_url,
            ttl_seconds=gateway_settings.assertion_ttl_seconds,
        )
        services.bus.subscribe(self.signer.on_event)
        self._tasks: list[asyncio.Task[None]] = []
        config = GatewayConfig(
            base_domain=settings.base_domain,
            portal_url=settings.portal_url,
            scheme=settings.public_scheme,
            secure_cookies=settings.public_scheme == "https",
            app_url=settings.app_url,
        )
        # Devices: who owns which certificate and in what state, rebuilt on device events.
        self.devices = DeviceDirectory(
            services.devices.gateway_view,
            stale_after=timedelta(hours=settings.devices.stale_after_hours),
        )
        services.bus.subscribe(self.devices.on_event)
        self.mtls_certificate = ServerCertificate(
            issuer=services.devices.ca,
            names=lambda: [
                settings.portal_host,
                "127.0.0.1",
                *(settings.app_host(a.name) for a in services.catalog.view().apps),
            ],
            folder=settings.home / "run" / "mtls",
        )
        services.bus.subscribe(self.mtls_certificate.on_event)
        self.access = AccessChecker(
            snapshots=self.snapshots,
            sessions=self.sessions,
            session_store=services.sessions,
            audit=services.audit,
            signer=self.signer,
            clock=services.clock,
            activity=self.activity,
            app_url=settings.app_url,
            devices=self.devices,
        )
        # Open websockets and tunnels are re-decided on every change, after the caches
        # above have dropped what the change touched.
        self.live = LiveConnections(self.access)
        services.bus.subscribe(self.live.on_event)
        self.gateway = Gateway(
            config=config,
            access=self.access,
            handoff=services.handoff,
            proxy=self.proxy,
            clock=services.clock,
            live=self.live,
            tunnel=TunnelServer(
                connect_timeout=gateway_settings.upstream_connect_timeout_seconds,
                audit=services.audit,
                clock=services.clock,
            ),
            cli_login=CliLogin(
                access=self.access,
                handoff=services.handoff,
                master_key=services.master_key,
                clock=services.clock,
            ),
        )
        self.forward_auth = ForwardAuth(
            gateway=self.gateway,
            access=self.access,
            config=config,
            clock=services.clock,
            clients=gateway_settings.forward_auth_clients,
        )
        self.authz_server = (
            AuthzServer(
                self.forward_auth, host=settings.bind, port=gateway_settings.forward_auth_port
            )
            if gateway_settings.forward_auth_port
            else None
        )
        portal = build_portal(PortalContext(services), api=build_api(services))
        self.asgi = HostRouter(
            portal_host=settings.portal_host,
            portal_url=settings.portal_url,
            portal=portal,
            gateway=self.gateway,
            forward_auth=self.forward_auth,
            trusted_proxies=gateway_settings.trusted_proxies,
            forward_auth_on_main_port=gateway_settings.forward_auth_on_main_port,
            on_startup=self.start,
            on_shutdown=self.stop,
        )

    async def start(self) -> None:
        # Order matters: fix the feed position first, then build state, so no change is
        # lost between reading state and starting to watch.
        self.watcher.start_position()
        if not self.snapshots.rebuild():
            raise RuntimeError("could not build the initial policy snapshot")
        if not self.devices.reload():
            raise RuntimeError("could not load the device directory")
        self.services.audit.start()
        await self.control.start()
        self._tasks.append(asyncio.create_task(self.watcher.run(), name="change-feed"))
        bus = self.services.bus
        if not isinstance(bus, MemoryBus):
            # Redis: other replicas' (and the CLI's) changes, as soon as they commit.
            self._tasks.append(asyncio.create_task(bus.run(), name="redis-bus"))
        self._tasks.append(asyncio.create_task(self._flush_activity(), name="session-activity"))
        self._tasks.append(asyncio.create_task(self.live.run(), name="live-connections"))
        gateway = self.services.settings.gateway
        self._tasks.append(
            asyncio.create_task(
                maintain_signing_keys(
                    self.services.keys,
                    self.signer,
                    rotation_days=gateway.signing_key_rotation_days,
                    overlap_minutes=gateway.signing_key_overlap_minutes,
                ),
                name="signing-keys",
            )
        )
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's generations, or each full collection walks it (120-340 ms pauses
        # under load measured by bench/forward_auth.py --diagnose, the bulk of the p99).
        gc.freeze()
        # The audit writer thread shares the GIL with the event loop; with the default
        # 5 ms switch interval a batch being sealed holds every waiting request for up to
        # that long (the p99 under load). 0.5 ms hands the GIL back ten times sooner.
        sys.setswitchinterval(0.0005)
        if self.authz_server is not None:
            await self.authz_server.start()

    async def _flush_activity(self, every: float = 5.0, purge_every: int = 720) -> None:
        """Write session activity in batches, for idle timeouts (never per request); about
        once an hour, also delete sessions that ended long ago."""
        rounds = 0
        while True:
            await asyncio.sleep(every)
            await self.flush_activity()
            rounds += 1
            if rounds % purge_every == 0:
                try:
                    await asyncio.to_thread(self.services.sessions.purge_ended)
                except Exception:  # noqa: BLE001 - purging is housekeeping; retried next hour
                    _log.exception("session_purge_failed")

    async def flush_activity(self) -> None:
        entries = self.activity.drain()
        if not entries:
            return
        try:
            await asyncio.to_thread(self.services.sessions.touch, entries)
        except Exception:  # noqa: BLE001 - a lost batch only shortens idle sessions
            _log.exception("session_activity_flush_failed")

    async def stop(self) -> None:
        await self.flush_activity()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.control.stop()
        if self.authz_server is not None:
            await self.authz_server.stop()
        await self.proxy.aclose()
        self.services.audit.stop()


class _QuietServer(uvicorn.Server):
    """A second server in the same process: the main server owns signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: object, *, host: str, port: int) -> uvicorn.Config:
    # uvicorn's proxy-headers rewriting stays off: HostRouter applies it (for the configured
    # trusted proxies) to everything but the forward-auth endpoints, whose peer check must
    # see the real socket peer. X-Forwarded-Host is never believed: Host alone picks the app.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


def run(services: Services, *, demo_port: int | None = None) -> None:
    """Serve until stopped, on uvloop when it is installed (uvicorn[standard] brings it).

    ``uvicorn.Server.serve`` does not pick the event loop itself; only ``uvicorn.run`` does.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(serve(services, demo_port=demo_port))
    else:
        uvloop.run(serve(services, demo_port=demo_port))


def mtls_config(runtime: Runtime) -> uvicorn.Config:
    """The HTTPS listener that asks for device certificates (``gateway.mtls_port``).

    Same app as the main port; TLS with a server certificate from the device CA (devices
    trust it through the CA certificate they got at enrolment) and client certificates
    optional but, when sent, verified by the handshake against the device CA. The
    protocol subclasses hand the verified device to the gateway.
    """
    from nevertrust.gateway.mtls import MtlsHttpProtocol, MtlsWebSocketProtocol

    certificate = runtime.mtls_certificate
    certificate.write()
    settings = runtime.services.settings
    config = uvicorn_config(runtime.asgi, host=settings.bind, port=settings.gateway.mtls_port)
    config.lifespan = "off"  # the main server runs the runtime's start and stop
    config.ssl_certfile = str(certificate.cert_file)
    config.ssl_keyfile = str(certificate.key_file)
    config.ssl_ca_certs = str(certificate.ca_file)
    config.ssl_cert_reqs = ssl.CERT_OPTIONAL
    config.http = MtlsHttpProtocol
    config.ws = MtlsWebSocketProtocol
    return config


class MtlsServer(uvicorn.Server):
    """The mTLS listener: once its TLS context exists, apps added later get their names
    into the server certificate (see ``ServerCertificate``)."""

    def __init__(self, config: uvicorn.Config, certificate: ServerCertificate) -> None:
        super().__init__(config)
        self._certificate = certificate

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        assert self.config.ssl is not None  # noqa: S101 - mtls_config sets the certificate
        self._certificate.attach(self.config.ssl, asyncio.get_running_loop())
        await super().startup(sockets)


async def serve(services: Services, *, demo_port: int | None = None) -> None:
    """Serve the platform (and, for ``nevertrust up``, the whoami demo upstream)."""
    settings = services.settings
    runtime = Runtime(services)
    main = uvicorn.Server(uvicorn_config(runtime.asgi, host=settings.bind, port=settings.port))
    extra: list[uvicorn.Server] = []
    if settings.gateway.mtls_port:
        config = await asyncio.to_thread(mtls_config, runtime)
        extra.append(MtlsServer(config, runtime.mtls_certificate))
    if demo_port is not None:
        whoami = WhoAmI(
            jwks_url=f"http://127.0.0.1:{settings.port}/.well-known/jwks.json",
            jwks_host=settings.portal_host,
            expected_issuer=settings.portal_url,
            expected_audience=settings.app_url("whoami"),
        )
        extra.append(_QuietServer(uvicorn_config(whoami, host="127.0.0.1", port=demo_port)))
    tasks = [asyncio.create_task(server.serve()) for server in extra]
    try:
        await main.serve()
    finally:
        for server in extra:
            server.should_exit = True
        for task in tasks:
            await task
