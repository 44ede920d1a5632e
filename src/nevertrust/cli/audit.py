"""nevertrust audit ... and nevertrust sessions ..."""

from __future__ import annotations

import json

import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.errors import NotFound

__all__ = ["app", "sessions_app"]

app = typer.Typer(help="Read and verify the tamper-evident audit log.", no_args_is_help=True)
sessions_app = typer.Typer(help="List and revoke sign-in sessions.", no_args_is_help=True)


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: int = typer.Option(20, "-n", "--lines", min=1, max=10000, help="How many records."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Show the newest audit records, oldest first."""
    with open_services(ctx) as svc:
        records = svc.audit.tail(lines)
    for r in records:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "seq": r.seq,
                        "ts": r.ts.isoformat(),
                        "actor": r.actor,
                        "action": r.action,
                        "target": r.target,
                        "source": r.source,
                        "outcome": r.outcome,
                        "reason": r.reason,
                        "details": json.loads(r.details),
                        "hash": r.hash,
                    }
                )
            )
        else:
            typer.echo(
                f"{r.seq:>6} {r.ts:%Y-%m-%dT%H:%M:%SZ} {r.outcome:<8} {r.action:<30} "
                f"{r.actor:<20} {r.target} {r.reason}".rstrip()
            )


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the hash chain: exit 0 when intact, 1 when records were changed, deleted or moved."""
    with open_services(ctx) as svc:
        report = svc.audit.verify()
    if report.intact:
        typer.echo(f"audit log intact: {report.checked} records verified")
        return
    typer.echo(
        f"audit log TAMPERED: {len(report.problems)} problem(s) in {report.checked} records",
        err=True,
    )
    for problem in report.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(1)


@sessions_app.command("list")
def list_sessions(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this user's sessions."),
) -> None:
    """List active portal sessions."""
    with open_services(ctx) as svc:
        sessions = svc.sessions.list_sessions(username=user)
        names = {u.id: u.name for u in svc.directory.list_users()}
    typer.echo(
        f"{'SESSION':<14} {'USER':<20} {'STARTED':<20} {'LAST SEEN':<20} {'EXPIRES':<20} "
        f"{'METHODS':<18} SOURCE"
    )
    for s in sessions:
        typer.echo(
            f"{s.id_hash[:12]:<14} {names.get(s.user_id, '?'):<20} "
            f"{s.created_at:%Y-%m-%d %H:%M:%S}  {s.last_activity:%Y-%m-%d %H:%M:%S}  "
            f"{s.expires_at:%Y-%m-%d %H:%M:%S}  {','.join(s.auth_methods):<18} {s.source_ip}"
        )


@sessions_app.command("revoke")
def revoke(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Revoke every session of this user."),
    session: str | None = typer.Option(
        None, "--session", help="Only this session (its id as `sessions list` shows it)."
    ),
) -> None:
    """Revoke every session of a user (or one), on the portal and every app, at once."""
    with open_services(ctx) as svc:
        if session is None:
            count = svc.sessions.revoke_user_sessions(user, actor=actor())
        else:
            if not svc.sessions.revoke_session(user, session.strip().lower(), actor=actor()):
                raise NotFound(f"{user!r} has no active session starting {session!r}")
            count = 1
        svc.notify_server()
    typer.echo(f"revoked {count} session(s) of {user}")
