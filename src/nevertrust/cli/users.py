"""nevertrust users ..."""

from __future__ import annotations

import json
import sys

import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(
    help="Manage people: add, list, disable, enable, set passwords.", no_args_is_help=True
)


def _read_password_stdin() -> str:
    data = sys.stdin.readline()
    password = data.rstrip("\r\n")
    if not password:
        raise InvalidInput("--password-stdin: expected a password on standard input, got nothing")
    return password


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (lower-case letters, digits, . _ -)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin."
    ),
    display_name: str = typer.Option("", "--display-name", help="Full name shown in apps."),
    email: str = typer.Option("", "--email", help="E-mail address."),
) -> None:
    """Add a user. Without --password-stdin, prints a one-time link to choose a password."""
    password = _read_password_stdin() if password_stdin else None
    with open_services(ctx) as svc:
        user = svc.directory.add_user(
            name, actor=actor(), password=password, display_name=display_name, email=email
        )
        svc.notify_server()
        typer.echo(f"added user {user.name}")
        if password is None:
            token = svc.directory.issue_setup_link_token(user.name, actor=actor())
            typer.echo(
                f"password setup link (one use): {svc.settings.portal_url}/setup?token={token}"
            )


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List users with their groups and status."""
    with open_services(ctx) as svc:
        users = svc.directory.list_users()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": u.name,
                        "kind": str(u.kind),
                        "enabled": u.enabled,
                        "groups": list(u.groups),
                        "has_password": u.password_hash is not None,
                        "display_name": u.display_name,
                        "email": u.email,
                    }
                    for u in users
                ],
                indent=2,
            )
        )
        return
    typer.echo(f"{'NAME':<24} {'KIND':<8} {'STATUS':<9} GROUPS")
    for u in users:
        status = "active" if u.enabled else "disabled"
        typer.echo(f"{u.name:<24} {u.kind:<8} {status:<9} {','.join(u.groups)}")


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(..., help="User to disable.")) -> None:
    """Disable a user and end all their sessions at once."""
    with open_services(ctx) as svc:
        svc.directory.set_enabled(name, False, actor=actor())
        svc.notify_server()
    typer.echo(f"disabled user {name}; their sessions are revoked")


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(..., help="User to enable.")) -> None:
    """Enable a disabled user."""
    with open_services(ctx) as svc:
        svc.directory.set_enabled(name, True, actor=actor())
        svc.notify_server()
    typer.echo(f"enabled user {name}")


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User whose password to set."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin."
    ),
) -> None:
    """Set a user's password (from stdin), or print a one-time setup link."""
    with open_services(ctx) as svc:
        if password_stdin:
            svc.directory.set_password(name, _read_password_stdin(), actor=actor())
            typer.echo(f"password set for {name}")
        else:
            token = svc.directory.issue_setup_link_token(name, actor=actor())
            typer.echo(
                f"password setup link (one use): {svc.settings.portal_url}/setup?token={token}"
            )


@app.command("setup-link")
def setup_link(
    ctx: typer.Context, name: str = typer.Argument(..., help="User to send the link to.")
) -> None:
    """Print a new one-time link with which the user chooses a password."""
    with open_services(ctx) as svc:
        token = svc.directory.issue_setup_link_token(name, actor=actor())
        typer.echo(f"{svc.settings.portal_url}/setup?token={token}")
