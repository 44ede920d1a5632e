"""nevertrust bans ...: sign-in bans from brute-force regulation."""

from __future__ import annotations

import json

import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(
    help="List and lift sign-in bans (too many failed sign-ins for a name or address).",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List the bans in force, oldest first."""
    with open_services(ctx) as svc:
        bans = svc.regulator.list_bans()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "subject": b.subject,
                        "reason": b.reason,
                        "failures": b.failures,
                        "created_at": b.created_at.isoformat(),
                        "expires_at": b.expires_at.isoformat(),
                    }
                    for b in bans
                ],
                indent=2,
            )
        )
        return
    if not bans:
        typer.echo("no bans in force")
        return
    typer.echo(f"{'SUBJECT':<40} {'SINCE (UTC)':<20} {'UNTIL (UTC)':<20} REASON")
    for b in bans:
        typer.echo(
            f"{b.subject:<40} {b.created_at:%Y-%m-%d %H:%M:%S}  "
            f"{b.expires_at:%Y-%m-%d %H:%M:%S}  {b.reason}"
        )


@app.command("lift")
def lift(
    ctx: typer.Context,
    subject: str | None = typer.Argument(
        None, help="user:NAME or ip:ADDRESS, as `bans list` shows it.", show_default=False
    ),
    user: str | None = typer.Option(None, "--user", help="Lift the ban on this user name."),
    ip: str | None = typer.Option(None, "--ip", help="Lift the ban on this address."),
) -> None:
    """Lift a ban and clear its failure count, so the next sign-in is judged afresh."""
    given = [
        s for s in (subject, f"user:{user}" if user else None, f"ip:{ip}" if ip else None) if s
    ]
    if len(given) != 1:
        raise InvalidInput("give exactly one of SUBJECT, --user NAME or --ip ADDRESS")
    with open_services(ctx) as svc:
        lifted = svc.regulator.lift(given[0], actor=actor())
    if lifted:
        typer.echo(f"lifted {lifted} ban(s) on {given[0]}; failure count cleared")
    else:
        typer.echo(f"no ban in force on {given[0]}; failure count cleared")
