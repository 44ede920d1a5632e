"""The ``nevertrust`` command with every noun (``nevertrust.cli.main`` loads it)."""

from __future__ import annotations

from pathlib import Path

import typer

from nevertrust.cli import (
    agent,
    apps,
    audit,
    bans,
    connect,
    devices,
    groups,
    mfa,
    policy,
    serve,
    service_accounts,
    signing_keys,
    users,
)
from nevertrust.cli import report as report_cli

__all__ = ["app"]

app = typer.Typer(
    help="NeverTrust: zero-trust access. Every command acts on the home given by --home or "
    "$NEVERTRUST_HOME (default ./.nevertrust).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="NeverTrust home directory.", show_default=False
    ),
) -> None:
    ctx.obj = {"home": home}


app.command("up")(serve.up)
app.command("server")(serve.server)
app.command("apply")(apps.apply_command)
app.command("connect")(connect.connect)
app.add_typer(users.app, name="users")
app.add_typer(groups.app, name="groups")
app.add_typer(mfa.app, name="mfa")
app.add_typer(apps.app, name="apps")
app.add_typer(audit.app, name="audit")
app.add_typer(audit.sessions_app, name="sessions")
app.add_typer(bans.app, name="bans")
app.add_typer(devices.app, name="devices")
app.add_typer(policy.app, name="policy")
app.add_typer(service_accounts.app, name="service-accounts")
app.add_typer(signing_keys.app, name="signing-keys")
app.add_typer(report_cli.app, name="report")
app.add_typer(serve.config_app, name="config")
app.add_typer(agent.app, name="agent")
