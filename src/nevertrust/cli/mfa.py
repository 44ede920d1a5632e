"""nevertrust mfa ...

Output of ``totp enroll``, ``recovery-codes`` and ``status --json`` is read by other
tools: the URI and each code are lines of their own on stdout; guidance goes to stderr.
"""

from __future__ import annotations

import json
import sys

import segno
import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.identity import MfaStatus

__all__ = ["app"]

app = typer.Typer(
    help="Second factors: authenticator apps (TOTP), recovery codes, status.",
    no_args_is_help=True,
)
totp_app = typer.Typer(help="Authenticator apps (TOTP codes).", no_args_is_help=True)
app.add_typer(totp_app, name="totp")


@totp_app.command("enroll")
def totp_enroll(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User to enrol."),
    qr: bool = typer.Option(False, "--qr", help="Also draw the QR code (on stderr)."),
) -> None:
    """Give a user an authenticator app; prints its otpauth URI (with the secret) once.

    Replaces any earlier authenticator of the user. The user proves possession at the
    next sign-in.
    """
    with open_services(ctx) as svc:
        enrolment = svc.totp.enroll_confirmed(name, actor=actor())
        svc.notify_server()
    typer.echo(f"enrolled an authenticator app for {name}; hand over this URI once:", err=True)
    typer.echo(enrolment.uri)
    if qr:
        segno.make(enrolment.uri, error="m").terminal(out=sys.stderr, compact=True)


@totp_app.command("remove")
def totp_remove(
    ctx: typer.Context, name: str = typer.Argument(..., help="User whose app to remove.")
) -> None:
    """Remove a user's authenticator app (for a lost phone)."""
    with open_services(ctx) as svc:
        removed = svc.totp.remove(name, actor=actor())
        svc.notify_server()
    typer.echo(
        f"removed the authenticator app of {name}"
        if removed
        else f"{name} had no authenticator app"
    )


@app.command("reset")
def reset(
    ctx: typer.Context, name: str = typer.Argument(..., help="User whose factors to remove.")
) -> None:
    """Remove every second factor of a user (app, passkeys, recovery codes) at once."""
    with open_services(ctx) as svc:
        done = svc.mfa_reset.reset(name, actor=actor())
        svc.notify_server()
    typer.echo(
        f"reset {name}: authenticator app {'removed' if done.totp else 'none'}, "
        f"{done.passkeys} passkey(s) and {done.recovery_codes} recovery code(s) removed"
    )


@app.command("recovery-codes")
def recovery_codes(
    ctx: typer.Context, name: str = typer.Argument(..., help="User to give new codes.")
) -> None:
    """Print a new set of one-time recovery codes; earlier codes stop working."""
    with open_services(ctx) as svc:
        codes = svc.recovery_codes.generate(name, actor=actor())
        svc.notify_server()
    typer.echo(f"new recovery codes for {name}, each good once (shown only now):", err=True)
    for code in codes:
        typer.echo(code)


def _as_dict(status: MfaStatus) -> dict[str, object]:
    return {
        "user": status.user,
        "totp": status.totp,
        "totp_pending": status.totp_pending,
        "passkeys": status.passkeys,
        "recovery_codes": status.recovery_codes,
    }


@app.command("status")
def status(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One user (default: everyone)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each person's second factors: authenticator app, passkeys, recovery codes."""
    with open_services(ctx) as svc:
        found = svc.totp.status(name)
    if as_json:
        typer.echo(json.dumps([_as_dict(s) for s in found], indent=2))
        return
    typer.echo(f"{'USER':<24} {'TOTP':<8} {'PASSKEYS':<9} RECOVERY CODES LEFT")
    for s in found:
        totp = "yes" if s.totp else ("pending" if s.totp_pending else "no")
        typer.echo(f"{s.user:<24} {totp:<8} {s.passkeys:<9} {s.recovery_codes}")
