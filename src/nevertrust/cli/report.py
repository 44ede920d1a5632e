"""nevertrust report ..."""

from __future__ import annotations

import json

import typer

from nevertrust.cli._context import open_services
from nevertrust.devices import DeviceInventory
from nevertrust.identity import IdentityReport
from nevertrust.identity.reports import DEFAULT_INACTIVE_DAYS

__all__ = ["app"]

app = typer.Typer(help="Reports for auditors and administrators.", no_args_is_help=True)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _print(report: IdentityReport) -> None:
    echo = typer.echo
    echo(f"Identity report, {report.generated_at:%Y-%m-%d %H:%M} UTC")
    echo(f"  enabled people:                 {report.people}")
    echo(
        f"  with a second factor:           {report.people_with_mfa} "
        f"({_percent(report.mfa_percent)})"
    )
    echo(
        f"  with a phishing-resistant one:  {report.people_with_phishing_resistant_mfa} "
        f"({_percent(report.phishing_resistant_percent)})"
    )
    echo(f"  without a second factor:        {', '.join(report.people_without_mfa) or '-'}")
    echo(f"  inactive for {report.inactive_days}+ days:")
    for p in report.inactive_people:
        last = f"last sign-in {p.last_login_at:%Y-%m-%d}" if p.last_login_at else "never signed in"
        echo(f"    {p.name} ({last}, {p.days_inactive} days)")
    echo(f"  enabled service accounts:       {report.service_accounts}")
    echo("  service accounts without an answerable owner:")
    for a in report.service_accounts_without_owner:
        echo(f"    {a.name} ({a.problem}{', owner ' + a.owner if a.owner else ''})")
    echo("  service accounts with stale keys:")
    for s in report.service_accounts_with_stale_keys:
        echo(f"    {s.name} (keys {', '.join(s.prefixes)}; owner {s.owner or '-'})")


def _print_devices(report: DeviceInventory) -> None:
    echo = typer.echo
    echo(f"Device inventory, {report.generated_at:%Y-%m-%d %H:%M} UTC")
    echo(f"  enrolled devices:   {report.total}")
    for state, count in report.by_state.items():
        echo(f"  {state + ':':<19} {count}")
    echo(f"  share compliant:    {_percent(report.compliant_percent)}")
    platforms = ", ".join(f"{k} {v}" for k, v in report.by_platform.items())
    echo(f"  by platform:        {platforms}")
    owned = ", ".join(f"{k} {v}" for k, v in report.by_ownership.items())
    echo(f"  by ownership:       {owned}")
    echo(f"  silent for {report.stale_after_hours}+ hours:")
    for s in report.stale:
        last = f"last report {s.last_report_at:%Y-%m-%d}" if s.last_report_at else "never reported"
        echo(f"    {s.device_id} {s.name} ({s.owner}; {last}, {s.days_silent} days)")


@app.command("devices")
def devices(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable field names)."),
) -> None:
    """Devices per state, % compliant, devices that stopped reporting."""
    with open_services(ctx) as svc:
        report = svc.devices.inventory()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_devices(report)


@app.command("identity")
def identity(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable field names)."),
    inactive_days: int = typer.Option(
        DEFAULT_INACTIVE_DAYS,
        "--inactive-days",
        help="Days without sign-in that count as inactive.",
    ),
) -> None:
    """Second-factor coverage, inactive people, unowned service accounts, stale keys."""
    with open_services(ctx) as svc:
        report = svc.reports.identity(inactive_days=inactive_days)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)
