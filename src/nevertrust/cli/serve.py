"""nevertrust up, nevertrust server, nevertrust config show."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nevertrust.app import Services, build_services
from nevertrust.cli._context import settings_from
from nevertrust.errors import AlreadyExists
from nevertrust.identity import ADMIN_GROUP
from nevertrust.settings import Settings

__all__ = ["config_app", "server", "up"]

config_app = typer.Typer(help="Show configuration.", no_args_is_help=True)

_BOOTSTRAP_ACTOR = "system:bootstrap"
DEMO_APP = "whoami"


def _bootstrap(svc: Services, demo_port: int) -> list[str]:
    """First run: an admin (password chosen through a one-time link) and the demo app.

    Later runs change nothing, except pointing the demo app at this run's demo port and
    handing out a fresh link while the admin still has no password.
    """
    lines: list[str] = []
    settings = svc.settings
    upstream = f"http://127.0.0.1:{demo_port}"
    if not svc.directory.list_users():
        svc.directory.add_user("admin", actor=_BOOTSTRAP_ACTOR, display_name="Administrator")
        svc.directory.add_group(
            ADMIN_GROUP, actor=_BOOTSTRAP_ACTOR, description="Platform administrators"
        )
        svc.directory.set_membership(ADMIN_GROUP, "admin", True, actor=_BOOTSTRAP_ACTOR)
        lines.append("First run: created user 'admin' in group 'admins'.")
    demo = svc.catalog.find_app(DEMO_APP)
    if demo is None:
        try:
            svc.catalog.add_app(
                DEMO_APP,
                upstream=upstream,
                actor=_BOOTSTRAP_ACTOR,
                description="Demo app: shows the identity NeverTrust vouches for",
            )
            if svc.directory.list_groups() and any(
                g.name == ADMIN_GROUP for g in svc.directory.list_groups()
            ):
                svc.catalog.set_rule(DEMO_APP, ADMIN_GROUP, True, actor=_BOOTSTRAP_ACTOR)
        except AlreadyExists:
            pass
    elif demo.upstream != upstream:
        svc.catalog.update_app(DEMO_APP, upstream=upstream, actor=_BOOTSTRAP_ACTOR)
    admin = next((u for u in svc.directory.list_users() if u.name == "admin"), None)
    if admin is not None and admin.password_hash is None:
        token = svc.directory.issue_setup_link_token("admin", actor=_BOOTSTRAP_ACTOR)
        lines.append(
            "Choose the admin password (one-time link, valid "
            f"{settings.identity.setup_link_ttl_hours} h):"
        )
        lines.append(f"    {settings.portal_url}/setup?token={token}")
    return lines


def _banner(settings: Settings, lines: list[str], *, demo: bool) -> str:
    out = ["", "NeverTrust is running.", f"  Portal:  {settings.portal_url}/"]
    if demo:
        out.append(f"  Demo:    {settings.app_url(DEMO_APP)}/   (the whoami app)")
    out.append(f"  Console: {settings.portal_url}/console   API: {settings.portal_url}/api/v1/docs")
    out.append(
        f"  Home:    {settings.home.resolve()}   Database: "
        f"{'SQLite' if settings.effective_database_url.startswith('sqlite') else 'PostgreSQL'}"
    )
    forward_auth = (
        f"http://{settings.bind}:{settings.gateway.forward_auth_port}"
        if settings.gateway.forward_auth_port
        else f"http://{settings.bind}:{settings.port}"
    )
    out.append(
        f"  Forward-auth for nginx/Caddy/Traefik/Envoy: {forward_auth}/.nevertrust/authz/"
        "{auth-request,forward-auth,ext-authz}   (docs/forward-auth.md)"
    )
    out.extend("  " + line for line in lines)
    out.append(
        "  Sign in as 'admin' at the portal. Add people with: "
        "echo 'a long pass phrase' | nevertrust users add NAME --password-stdin"
    )
    out.append("  *.localhost resolves to this machine in browsers and curl. Stop with Ctrl-C.")
    return "\n".join(out) + "\n"


def up(ctx: typer.Context) -> None:
    """Initialise the home if needed, bootstrap an admin and the demo app, and serve."""
    # The web stack is imported only by the commands that serve: every other command
    # starts faster for not loading it.
    from nevertrust.logging import configure_logging
    from nevertrust.server import run

    settings = settings_from(ctx)
    configure_logging(settings)
    demo_port = settings.demo_port or settings.port + 1
    svc = build_services(settings)
    try:
        lines = _bootstrap(svc, demo_port)
        typer.echo(_banner(settings, lines, demo=True))
        run(svc, demo_port=demo_port)
    finally:
        svc.close()


def server(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="YAML file of settings."),
) -> None:
    """Serve the platform with the given settings (no bootstrap, no demo app)."""
    from nevertrust.logging import configure_logging
    from nevertrust.server import run

    settings = settings_from(ctx, config_file=config)
    configure_logging(settings)
    svc = build_services(settings)
    try:
        typer.echo(_banner(settings, [], demo=False))
        run(svc)
    finally:
        svc.close()


@config_app.command("show")
def show(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="YAML file of settings."),
) -> None:
    """Print every setting with its value and description."""
    settings = settings_from(ctx, config_file=config)

    def walk(model: object, prefix: str) -> None:
        for name, field in type(model).model_fields.items():  # type: ignore[attr-defined]
            value = getattr(model, name)
            if hasattr(value, "model_fields"):
                walk(value, f"{prefix}{name}.")
                continue
            shown = json.dumps(str(value) if isinstance(value, Path) else value)
            typer.echo(f"{prefix}{name} = {shown}    # {field.description or ''}")

    walk(settings, "")
