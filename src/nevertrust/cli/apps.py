"""nevertrust apps ... and nevertrust apply."""

from __future__ import annotations

import json

import typer

from nevertrust.cli._context import actor, open_services, read_input

__all__ = ["app", "apply_command"]

app = typer.Typer(help="Publish applications and decide who may use them.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="App name; served at NAME.<base domain>."),
    upstream: str = typer.Option(
        ..., "--upstream", help="Where the app really runs (http or https URL)."
    ),
    description: str = typer.Option("", "--description", help="Shown on the portal."),
) -> None:
    """Publish an app behind the gateway. Nobody may use it until you allow a group."""
    with open_services(ctx) as svc:
        svc.catalog.add_app(name, upstream=upstream, description=description, actor=actor())
        svc.notify_server()
        typer.echo(f"added app {name} at {svc.settings.app_url(name)}/ -> {upstream}")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="App name."),
    upstream: str = typer.Option(..., "--upstream", help="New upstream URL."),
) -> None:
    """Point an app at a new upstream."""
    with open_services(ctx) as svc:
        svc.catalog.update_app(name, upstream=upstream, actor=actor())
        svc.notify_server()
    typer.echo(f"app {name} now proxies to {upstream}")


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="App name.")) -> None:
    """Unpublish an app and its rules."""
    with open_services(ctx) as svc:
        svc.catalog.remove_app(name, actor=actor())
        svc.notify_server()
    typer.echo(f"removed app {name}")


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List apps, their upstreams and who may use them."""
    with open_services(ctx) as svc:
        apps = svc.catalog.list_apps()
        rules = svc.catalog.list_rules()
        urls = {a.name: svc.settings.app_url(a.name) for a in apps}
    allowed: dict[str, list[str]] = {}
    device_groups: dict[str, list[str]] = {}
    for rule in rules:
        allowed.setdefault(rule.app, []).append(rule.group)
        if rule.require_compliant_device:
            device_groups.setdefault(rule.app, []).append(rule.group)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": a.name,
                        "url": urls[a.name],
                        "upstream": a.upstream,
                        "allowed_groups": allowed.get(a.name, []),
                        "compliant_device_groups": device_groups.get(a.name, []),
                    }
                    for a in apps
                ],
                indent=2,
            )
        )
        return
    typer.echo(f"{'APP':<20} {'UPSTREAM':<36} ALLOWED GROUPS (* needs a compliant device)")
    for a in apps:
        marked = [
            g + ("*" if g in device_groups.get(a.name, []) else "") for g in allowed.get(a.name, [])
        ]
        typer.echo(f"{a.name:<20} {a.upstream:<36} {','.join(marked) or '(nobody)'}")


@app.command("allow")
def allow(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="App name."),
    group: str = typer.Option(..., "--group", help="Group whose members may use the app."),
    require_compliant_device: bool | None = typer.Option(
        None,
        "--require-compliant-device/--no-require-compliant-device",
        help="Members also need an enrolled, compliant device (docs/devices.md). "
        "Left out: an existing rule keeps its setting.",
        show_default=False,
    ),
) -> None:
    """Let members of a group use an app (from a compliant device, if required)."""
    with open_services(ctx) as svc:
        changed = svc.catalog.set_rule(
            name, group, True, actor=actor(), require_compliant_device=require_compliant_device
        )
        svc.notify_server()
        rule = next(
            (r for r in svc.catalog.list_rules() if r.app == name and r.group == group), None
        )
    device = (
        " from a compliant device" if rule is not None and rule.require_compliant_device else ""
    )
    typer.echo(
        f"group {group} may now use {name}{device}"
        if changed
        else f"group {group} could already use {name}{device}"
    )


@app.command("disallow")
def disallow(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="App name."),
    group: str = typer.Option(..., "--group", help="Group to remove."),
) -> None:
    """Stop letting a group use an app."""
    with open_services(ctx) as svc:
        changed = svc.catalog.set_rule(name, group, False, actor=actor())
        svc.notify_server()
    typer.echo(
        f"group {group} may no longer use {name}"
        if changed
        else f"group {group} had no access to {name}"
    )


def apply_command(
    ctx: typer.Context,
    file: str = typer.Option(
        ..., "-f", "--file", help="YAML file of groups and apps, or - for stdin."
    ),
    prune: bool = typer.Option(False, "--prune", help="Remove apps that the file does not list."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
) -> None:
    """Apply a declarative file of apps and access rules; stored as a new config version."""
    text, source = read_input(file)
    with open_services(ctx) as svc:
        result = svc.apply.apply(text, file=source, actor=actor(), prune=prune, dry_run=dry_run)
        if result.version is not None:
            svc.notify_server()
    for change in result.changes:
        typer.echo(("would: " if dry_run else "") + change)
    if dry_run:
        typer.echo(f"dry run: {len(result.changes)} change(s), nothing written")
    elif result.version is None:
        typer.echo("no changes")
    else:
        typer.echo(f"applied as config version {result.version}")
