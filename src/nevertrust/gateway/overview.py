"""What an admin needs to put a proxy in front of NeverTrust, or an app behind it: where
forward-auth is answered and to whom, which proxies are believed, how apps are reached.

One plain value built from settings and the catalog, shown by the console's Gateway page
and ``GET /api/v1/gateway``, so both say the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nevertrust.domain import App
from nevertrust.settings import Settings

__all__ = ["AppDoor", "GatewayOverview", "gateway_overview"]

_STYLES = (
    ("nginx auth_request", "auth-request"),
    ("Caddy forward_auth, Traefik ForwardAuth", "forward-auth"),
    ("Envoy ext_authz (path_prefix)", "ext-authz"),
)


@dataclass(frozen=True, slots=True)
class AppDoor:
    name: str
    url: str
    kind: str  # "web" (proxied, or behind your proxy with forward-auth) or "tcp" (tunnel)
    upstream: str
    how: str


@dataclass(frozen=True, slots=True)
class GatewayOverview:
    forward_auth_endpoints: tuple[tuple[str, str], ...]  # (proxy, URL)
    forward_auth_clients: tuple[str, ...]
    forward_auth_on_main_port: bool
    trusted_proxies: tuple[str, ...]
    mtls_url: str
    upstream_timeout_seconds: float
    upstream_pool_size: int
    upstream_ca_file: str
    apps: tuple[AppDoor, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "forward_auth": {
                "endpoints": [{"proxy": p, "url": u} for p, u in self.forward_auth_endpoints],
                "clients": list(self.forward_auth_clients),
                "on_main_port": self.forward_auth_on_main_port,
            },
            "trusted_proxies": list(self.trusted_proxies),
            "mtls_url": self.mtls_url,
            "upstreams": {
                "timeout_seconds": self.upstream_timeout_seconds,
                "pool_size": self.upstream_pool_size,
                "ca_file": self.upstream_ca_file,
            },
            "apps": [
                {"name": a.name, "url": a.url, "kind": a.kind, "upstream": a.upstream, "how": a.how}
                for a in self.apps
            ],
        }


def gateway_overview(settings: Settings, apps: Iterable[App]) -> GatewayOverview:
    gateway = settings.gateway
    bases = []
    if gateway.forward_auth_port:
        bases.append(f"http://{settings.bind}:{gateway.forward_auth_port}")
    if gateway.forward_auth_on_main_port:
        bases.append(f"http://{settings.bind}:{settings.port}")
    endpoints = tuple(
        (proxy, f"{base}/.nevertrust/authz/{path}") for base in bases for proxy, path in _STYLES
    )
    doors = []
    for app in sorted(apps, key=lambda a: a.name):
        tcp = app.upstream.startswith("tcp://")
        doors.append(
            AppDoor(
                name=app.name,
                url=settings.app_url(app.name),
                kind="tcp" if tcp else "web",
                upstream=app.upstream,
                how=f"nevertrust connect {app.name} --local-port PORT"
                if tcp
                else "built-in proxy, or your proxy with forward-auth",
            )
        )
    return GatewayOverview(
        forward_auth_endpoints=endpoints,
        forward_auth_clients=tuple(gateway.forward_auth_clients),
        forward_auth_on_main_port=gateway.forward_auth_on_main_port,
        trusted_proxies=tuple(gateway.trusted_proxies),
        mtls_url=(
            f"https://{settings.portal_host}:{gateway.mtls_port}" if gateway.mtls_port else ""
        ),
        upstream_timeout_seconds=gateway.upstream_timeout_seconds,
        upstream_pool_size=gateway.upstream_pool_size,
        upstream_ca_file=str(gateway.upstream_ca_file or ""),
        apps=tuple(doors),
    )
