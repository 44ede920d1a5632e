"""nevertrust service-accounts ..."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.identity import KeyView, ServiceAccount
from nevertrust.identity.api_keys import parse_duration

__all__ = ["app"]

app = typer.Typer(
    help="Machine identities: owned by a person, in groups like people, with API keys.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="Issue, list, rotate and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _key_json(key: KeyView) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "status": str(key.status),
        "stale": key.stale,
    }


def _account_json(account: ServiceAccount) -> dict[str, Any]:
    return {
        "name": account.name,
        "description": account.description,
        "enabled": account.enabled,
        "owner": account.owner,
        "owner_problem": account.owner_problem,
        "groups": list(account.groups),
        "created_at": account.created_at.isoformat(),
        "keys": [_key_json(k) for k in account.keys],
    }


def _print_keys(keys: tuple[KeyView, ...], indent: str = "") -> None:
    for k in keys:
        flag = " STALE" if k.stale else ""
        typer.echo(
            f"{indent}{k.prefix}  {k.name:<16} {','.join(k.scopes):<20} {k.status:<8} "
            f"expires {_when(k.expires_at)}  last used {_when(k.last_used_at)}{flag}"
        )


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Account name (same rules as user names)."),
    owner: str = typer.Option(..., "--owner", help="The person answerable for it."),
    description: str = typer.Option("", "--description", help="What it is for."),
) -> None:
    """Create a service account. It has no password; give it keys with `keys issue`."""
    with open_services(ctx) as svc:
        account = svc.service_accounts.create(
            name, owner=owner, description=description, actor=actor()
        )
        svc.notify_server()
    typer.echo(f"created service account {account.name} (owner {account.owner})")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Inventory: owners, groups and keys; stale keys and missing owners are flagged."""
    with open_services(ctx) as svc:
        accounts = svc.service_accounts.inventory()
    if as_json:
        typer.echo(json.dumps([_account_json(a) for a in accounts], indent=2))
        return
    for a in accounts:
        status = "active" if a.enabled else "disabled"
        owner = a.owner or "-"
        problem = f" [{a.owner_problem}]" if a.owner_problem else ""
        typer.echo(
            f"{a.name}  {status}  owner {owner}{problem}  groups {','.join(a.groups) or '-'}"
        )
        _print_keys(a.keys, indent="  ")
    if not accounts:
        typer.echo("no service accounts")


@app.command("set-owner")
def set_owner(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Service account."),
    owner: str = typer.Argument(..., help="New owner: an enabled person."),
) -> None:
    """Hand a service account to another person."""
    with open_services(ctx) as svc:
        svc.service_accounts.set_owner(name, owner, actor=actor())
    typer.echo(f"{name} is now owned by {owner}")


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(..., help="Service account.")) -> None:
    """Disable a service account: every one of its keys stops working at once."""
    with open_services(ctx) as svc:
        svc.service_accounts.set_enabled(name, False, actor=actor())
        svc.notify_server()
    typer.echo(f"disabled service account {name}; its keys no longer work")


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(..., help="Service account.")) -> None:
    """Enable a disabled service account (its unexpired, unrevoked keys work again)."""
    with open_services(ctx) as svc:
        svc.service_accounts.set_enabled(name, True, actor=actor())
        svc.notify_server()
    typer.echo(f"enabled service account {name}")


def _announce(plaintext: str, what: str) -> None:
    # The key alone on stdout (KEY=$(nevertrust ...)); everything else on stderr.
    typer.echo(what, err=True)
    typer.echo(plaintext)
    typer.echo("store it now: it is shown only this once", err=True)


@keys_app.command("issue")
def issue(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="Service account."),
    name: str = typer.Option(..., "--name", help="What the key is for, e.g. deploy."),
    scopes: list[str] = typer.Option(..., "--scope", help="api:read or api:write; repeatable."),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime like 30d or 12h (default 90d, at most 365d)."
    ),
) -> None:
    """Issue a key and print it once."""
    ttl = parse_duration(expires_in, field="--expires-in") if expires_in else None
    with open_services(ctx) as svc:
        plaintext, record = svc.service_accounts.issue_key(
            account, name, scopes, ttl, actor=actor()
        )
    _announce(
        plaintext,
        f"issued key {record.prefix} ({record.name}) for {account}: "
        f"scopes {' '.join(record.scopes)}, expires {_when(record.expires_at)} UTC",
    )


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="Service account."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The account's keys (prefixes only: secrets are never stored)."""
    with open_services(ctx) as svc:
        keys = svc.service_accounts.list_keys(account)
    if as_json:
        typer.echo(json.dumps([_key_json(k) for k in keys], indent=2))
    else:
        _print_keys(keys)


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    prefix: str = typer.Argument(..., help="Prefix of the key to replace."),
    grace: str | None = typer.Option(
        None, "--grace", help="How long the old key keeps working, like 24h (default 24h)."
    ),
) -> None:
    """Issue a replacement (same name and scopes); the old key expires after the grace."""
    delta = parse_duration(grace, field="--grace") if grace else None
    with open_services(ctx) as svc:
        plaintext, record = svc.service_accounts.rotate_key(prefix, delta, actor=actor())
        old = svc.service_accounts.key(prefix)
    _announce(
        plaintext,
        f"issued key {record.prefix} ({record.name}) replacing {prefix}, which stops "
        f"working at {_when(old.expires_at)} UTC",
    )


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, prefix: str = typer.Argument(..., help="Prefix of the key to revoke.")
) -> None:
    """Stop a key now."""
    with open_services(ctx) as svc:
        changed = svc.service_accounts.revoke_key(prefix, actor=actor())
    typer.echo(f"revoked key {prefix}" if changed else f"key {prefix} was already revoked")
