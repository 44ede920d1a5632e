"""nevertrust connect APP --local-port N: a local port tunnelled to a tcp:// app.

The work is in ``nevertrust.tunnelclient``; it is imported when the command runs so that
every other command starts without loading websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import typer

from nevertrust.cli._context import settings_from
from nevertrust.errors import InvalidInput

if TYPE_CHECKING:
    from nevertrust.tunnelclient import AppEndpoint, ClientTls

__all__ = ["connect"]


def _has_display() -> bool:
    """Whether a browser window can open here; never on a headless box or over plain SSH.

    These variables belong to the desktop session, not to NeverTrust's configuration,
    which is why they are read here rather than through settings.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    env = os.environ  # noqa: TID251 - the desktop's variables, not our settings
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


async def _open_browser(url: str) -> None:
    with contextlib.suppress(Exception):  # the printed link is the way in; this is a nicety
        await asyncio.to_thread(webbrowser.open, url)


def _say(line: str) -> None:
    typer.echo(line)


def _warn(line: str) -> None:
    typer.echo(line, err=True)


def connect(
    ctx: typer.Context,
    app: str = typer.Argument(..., help="The app to reach (it has a tcp:// upstream)."),
    local_port: int = typer.Option(
        ..., "--local-port", min=1, max=65535, help="Local port to listen on."
    ),
    bind: str = typer.Option(
        "127.0.0.1", "--bind", help="Local address to listen on; loopback addresses only."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="The portal URL, e.g. https://auth.example.com (default: this home's settings).",
        show_default=False,
    ),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Only print the sign-in link; do not open a browser."
    ),
    device: bool | None = typer.Option(
        None,
        "--device/--no-device",
        help="Present this machine's device certificate (from the agent home) over mTLS. "
        "Default: when the agent home has one and --server is https.",
        show_default=False,
    ),
) -> None:
    """Open a local port whose connections reach APP through the gateway.

    Sign in once in your browser; every connection is then decided by the gateway's policy
    on its own, and cut when your access ends. Example: nevertrust connect db --local-port
    15432, then psql -h 127.0.0.1 -p 15432.
    """
    from nevertrust.tunnelclient import AppEndpoint, client_tls, loopback_bind

    address = loopback_bind(bind)
    settings = settings_from(ctx)
    endpoint = AppEndpoint.from_portal(server or settings.portal_url, app)
    tls = client_tls(endpoint, settings.agent_home.expanduser(), device=device)
    if tls.device is not None:
        _say(
            f"Using device {tls.device.device_id} (certificate {tls.device.certificate}, "
            f"valid until {tls.device.not_after})."
        )
    elif endpoint.scheme == "https":
        _say("No device certificate presented (--no-device or no enrolled agent).")
    opener = _open_browser if not no_browser and _has_display() else None
    try:
        asyncio.run(_run(endpoint, tls, address, local_port, opener))
    except KeyboardInterrupt:
        _warn("stopped")


async def _run(
    endpoint: AppEndpoint,
    tls: ClientTls,
    address: str,
    port: int,
    opener: Callable[[str], Awaitable[None]] | None,
) -> None:
    from nevertrust.tunnelclient import Credentials, Forwarder, GatewayClient
    from nevertrust.tunnelclient.signin import sign_in

    client = GatewayClient(endpoint, tls=tls.context)
    try:
        credentials = Credentials(lambda: sign_in(endpoint, client, say=_say, open_browser=opener))
        forwarder = Forwarder(endpoint, credentials, client, say=_say, warn=_warn, tls=tls)
        try:
            listener = await forwarder.listen(address, port)
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from exc
        session = await credentials.current()
        await listener.start_serving()
        _say(
            f"Signed in as {session.user}. Forwarding {address}:{port} -> {endpoint.app} "
            f"through {endpoint.origin}. Press Ctrl-C to stop."
        )
        await forwarder.serve(listener)
    finally:
        await client.aclose()
