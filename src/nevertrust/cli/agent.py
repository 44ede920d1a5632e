"""nevertrust agent enroll | report | status | posture | bind-browser: the device agent's
commands.

The work is in ``nevertrust.agent``, imported when a command runs; this module reads the
agent home from settings ($NEVERTRUST_AGENT_HOME) and prints.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from nevertrust.agent import Agent, Collected, Status

__all__ = ["app"]

app = typer.Typer(
    help="The device agent: enrol this machine, report its posture, show what is stored. "
    "Key and state live in $NEVERTRUST_AGENT_HOME (default ~/.nevertrust-agent).",
    no_args_is_help=True,
)


def _agent() -> Agent:
    from nevertrust.agent import Agent, AgentHome
    from nevertrust.settings import load_settings

    return Agent(AgentHome(load_settings().agent_home.expanduser()))


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _reasons(reasons: tuple[str, ...] | list[str]) -> str:
    return ", ".join(reasons) if reasons else "-"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@app.command("enroll")
def enroll(
    server: str = typer.Option(
        ..., "--server", help="The portal URL, e.g. https://auth.example.com."
    ),
    token: str = typer.Option(
        ...,
        "--token",
        help="The one-time enrolment token from `nevertrust devices token`; "
        "'-' reads it from standard input (keeps it out of the process list).",
    ),
    personal: bool = typer.Option(
        False, "--personal", help="A personal device (BYOD) rather than a managed one."
    ),
    force: bool = typer.Option(
        False, "--force", help="Enrol again over an existing enrolment, with a new key."
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        help="PEM CA bundle to trust for an https portal with a private CA.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Enrol this device: make its key, send the public half and the posture, store the
    device certificate. Prints the device id and its state."""
    if token == "-":  # noqa: S105 - "-" means standard input, not a password
        token = sys.stdin.readline()
    ca = str(ca_file.expanduser().resolve()) if ca_file is not None else None
    result = _agent().enroll(
        server=server,
        token=token,
        ownership="personal" if personal else "managed",
        force=force,
        ca_file=ca,
    )
    state = result.state
    if as_json:
        _print_json(state.to_json())
        return
    typer.echo(f"device: {state.device_id}")
    typer.echo(f"state: {state.state}")
    typer.echo(f"reasons: {_reasons(state.reasons)}")
    typer.echo(f"certificate valid until: {_when(state.certificate_expires_at)}")
    typer.echo(
        f"Enrolled with {state.server}. Report every {state.report_interval_seconds} s "
        "with `nevertrust agent report` (docs/agent.md has a systemd timer).",
        err=True,
    )


def _report_once(agent: Agent, *, as_json: bool) -> None:
    result = agent.report()
    outcome = result.outcome
    if as_json:
        _print_json(
            {
                "device_id": result.state.device_id,
                "state": outcome.state,
                "compliant": outcome.compliant,
                "reasons": list(outcome.reasons),
                "certificate_renewed": result.certificate_renewed,
                "certificate_expires_at": _when(result.state.certificate_expires_at),
                "posture": result.collected.posture.to_json(),
            }
        )
        return
    typer.echo(f"state: {outcome.state}")
    typer.echo(f"reasons: {_reasons(outcome.reasons)}")
    if result.certificate_renewed:
        typer.echo(f"certificate renewed, valid until {_when(result.state.certificate_expires_at)}")


@app.command("report")
def report(
    watch: bool = typer.Option(
        False, "--watch", help="Keep reporting every interval the server asked for, until Ctrl-C."
    ),
    interval: int | None = typer.Option(
        None,
        "--interval",
        min=10,
        help="Seconds between reports with --watch (default: the server's report interval).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Collect this device's posture, sign it with the device key and send it. Prints the
    state and reasons the server decided; fails when the server refuses the report."""
    from nevertrust.agent import BadServerResponse, ServerUnreachable

    agent = _agent()
    if not watch:
        _report_once(agent, as_json=as_json)
        return
    try:
        while True:
            try:
                _report_once(agent, as_json=as_json)
            except (ServerUnreachable, BadServerResponse) as exc:
                # Passing trouble: try again next time. A refusal is not passing: it raises.
                typer.echo(f"error[{exc.code}]: {exc.message}", err=True)
            pause = interval or agent.status().state.report_interval_seconds
            time.sleep(pause)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


def _status_json(status: Status) -> dict[str, Any]:
    data = status.state.to_json()
    data.pop("last_iat", None)
    data["home"] = status.home
    data["certificate_expires_at"] = (
        _when(status.certificate_expires_at) if status.certificate_expires_at else None
    )
    return data


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show what the agent has stored: device, server, state, reasons, certificate, last report."""
    current = _agent().status()
    if as_json:
        _print_json(_status_json(current))
        return
    state = current.state
    expires = current.certificate_expires_at
    left = ""
    if expires is not None:
        hours = (expires - datetime.now(UTC)).total_seconds() / 3600
        left = f" (EXPIRED {-hours:.0f} h ago)" if hours < 0 else f" (in {hours:.0f} h)"
    rows = [
        ("device", state.device_id),
        ("server", state.server),
        ("ownership", state.ownership),
        ("state", state.state),
        ("reasons", _reasons(state.reasons)),
        ("certificate", f"valid until {_when(expires)}{left}" if expires else "-"),
        ("last report", _when(state.last_report_at) if state.last_report_at else "never"),
        ("home", current.home),
    ]
    if state.last_error:
        rows.append(("last error", f"{state.last_error} ({_when(state.last_error_at)})"))
    for label, value in rows:
        typer.echo(f"{label + ':':<13}{value}")


@app.command("bind-browser")
def bind_browser() -> None:
    """Print a one-time link that binds a browser on this machine to this device.

    Open it in the browser you use here, signed in as the device's owner: the browser
    registers a passkey kept by this computer, and sessions opened with it count as this
    device for the applications that require a compliant device. The link is good once,
    for a few minutes (the server's devices.report_max_age_seconds).
    """
    link = _agent().bind_browser_link()
    typer.echo(link)


def _posture_json(collected: Collected) -> dict[str, Any]:
    return {"posture": collected.posture.to_json(), "notes": dict(collected.notes)}


@app.command("posture")
def posture(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show the posture this device would report, and how each field was found. Sends nothing."""
    from nevertrust.agent import collect_posture

    collected = collect_posture()
    if as_json:
        _print_json(_posture_json(collected))
        return
    for field, value in collected.posture.to_json().items():
        shown = "null (unknown)" if value is None else json.dumps(value)
        note = collected.notes.get(field)
        typer.echo(f"{field + ':':<21}{shown}" + (f"   # {note}" if note else ""))
