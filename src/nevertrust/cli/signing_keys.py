"""nevertrust signing-keys ...: the keys that sign the gateway's identity assertions.

(``keys`` would be ambiguous: service-account API keys live under ``service-accounts``.)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import typer

from nevertrust.app import Services
from nevertrust.cli._context import actor, open_services
from nevertrust.gateway.models import KeyView
from nevertrust.identity.api_keys import parse_duration

__all__ = ["app"]

app = typer.Typer(
    help="Assertion signing keys: list, rotate (with overlap), retire. Upstreams verify "
    "assertions against the JWKS at /.well-known/jwks.json.",
    no_args_is_help=True,
)


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _json(view: KeyView) -> dict[str, Any]:
    return {
        "kid": view.kid,
        "state": str(view.state),
        "created_at": view.created_at.isoformat(),
        "retired_at": view.retired_at.isoformat() if view.retired_at else None,
    }


def _notify(svc: Services) -> str:
    if svc.notify_server():
        return "the running server has been told"
    return "no server is running on this home; servers switch when they see the change"


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """Every signing key, oldest first: active (signs), retiring (still in the JWKS until
    the time shown), retired (gone from the JWKS)."""
    with open_services(ctx) as svc:
        views = svc.keys.list()
    if as_json:
        typer.echo(json.dumps([_json(v) for v in views], indent=2))
        return
    if not views:
        typer.echo("no signing key yet (the server creates one when it starts)")
        return
    typer.echo(f"{'KID':<18} {'STATE':<9} {'CREATED (UTC)':<20} LEAVES JWKS (UTC)")
    for v in views:
        typer.echo(f"{v.kid:<18} {v.state:<9} {_when(v.created_at):<20} {_when(v.retired_at)}")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    overlap: str | None = typer.Option(
        None,
        "--overlap",
        help="How long replaced keys stay in the JWKS, like 60m or 2h "
        "(default: gateway.signing_key_overlap_minutes).",
    ),
) -> None:
    """Sign with a new key from now on; the replaced keys stay in the JWKS for the overlap."""
    with open_services(ctx) as svc:
        delta = (
            parse_duration(overlap, field="--overlap")
            if overlap
            else timedelta(minutes=svc.settings.gateway.signing_key_overlap_minutes)
        )
        rotation = svc.keys.rotate(actor=actor(), overlap=delta)
        note = _notify(svc)
    typer.echo(f"rotated: {rotation.active.kid} is the active signing key; {note}")
    for v in rotation.replaced:
        typer.echo(f"  {v.kid} leaves the JWKS at {_when(v.retired_at)} UTC")


@app.command("retire")
def retire(
    ctx: typer.Context,
    kid: str = typer.Argument(..., help="Key id, as `signing-keys list` shows it."),
) -> None:
    """Remove a key from the JWKS now (a key you suspect is compromised): assertions it
    signed stop verifying once upstreams refetch the JWKS (at most 5 minutes). The active
    key cannot be retired: rotate first."""
    with open_services(ctx) as svc:
        view = svc.keys.retire(kid, actor=actor())
        svc.notify_server()
    typer.echo(f"retired {view.kid}: no longer in the JWKS (since {_when(view.retired_at)} UTC)")
