"""nevertrust groups ..."""

from __future__ import annotations

import json

import typer

from nevertrust.cli._context import actor, open_services

__all__ = ["app"]

app = typer.Typer(help="Manage groups and their members.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    group: str = typer.Argument(..., help="Group name."),
    description: str = typer.Option("", "--description", help="What the group is for."),
) -> None:
    """Create a group."""
    with open_services(ctx) as svc:
        svc.directory.add_group(group, actor=actor(), description=description)
        svc.notify_server()
    typer.echo(f"added group {group}")


@app.command("add-member")
def add_member(
    ctx: typer.Context,
    group: str = typer.Argument(..., help="Group name."),
    name: str = typer.Argument(..., help="User name."),
) -> None:
    """Add a user to a group."""
    with open_services(ctx) as svc:
        changed = svc.directory.set_membership(group, name, True, actor=actor())
        svc.notify_server()
    typer.echo(f"added {name} to {group}" if changed else f"{name} is already in {group}")


@app.command("remove-member")
def remove_member(
    ctx: typer.Context,
    group: str = typer.Argument(..., help="Group name."),
    name: str = typer.Argument(..., help="User name."),
) -> None:
    """Remove a user from a group."""
    with open_services(ctx) as svc:
        changed = svc.directory.set_membership(group, name, False, actor=actor())
        svc.notify_server()
    typer.echo(f"removed {name} from {group}" if changed else f"{name} was not in {group}")


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List groups and their members."""
    with open_services(ctx) as svc:
        groups = svc.directory.list_groups()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": g.name, "description": g.description, "members": list(g.members)}
                    for g in groups
                ],
                indent=2,
            )
        )
        return
    typer.echo(f"{'GROUP':<24} MEMBERS")
    for g in groups:
        typer.echo(f"{g.name:<24} {','.join(g.members)}")


@app.command("require-mfa")
def require_mfa(
    ctx: typer.Context,
    group: str = typer.Argument(..., help="Group name."),
    off: bool = typer.Option(False, "--off", help="Lift the requirement."),
) -> None:
    """Require the group's members to sign in with a second factor (or, with --off, not)."""
    with open_services(ctx) as svc:
        svc.directory.set_group_mfa_required(group, not off, actor=actor())
        svc.notify_server()
    typer.echo(
        f"members of {group} no longer need a second factor"
        if off
        else f"members of {group} must now sign in with a second factor"
    )
