"""nevertrust devices ...: enrolment tokens, inventory, quarantine, compliance policies."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from nevertrust.cli._context import actor, open_services
from nevertrust.devices import CompliancePolicy, DeviceRecord
from nevertrust.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(
    help="Enrolled devices: enrolment tokens, inventory, quarantine, compliance policies.",
    no_args_is_help=True,
)
policy_app = typer.Typer(help="Compliance policies per platform.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@app.command("token")
def token(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="The person whose device will enrol."),
) -> None:
    """Make a one-time enrolment token; prints the token alone (for TOKEN=$(...))."""
    with open_services(ctx) as svc:
        issued = svc.device_enrolment.create_token(user, actor=actor())
    typer.echo(issued.token)


@app.command("list")
def list_(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this person's devices."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable field names)."),
) -> None:
    """Every enrolled device: state, owner, platform, ownership, last report, reasons."""
    with open_services(ctx) as svc:
        devices = svc.devices.list_devices(username=user)
    if as_json:
        typer.echo(json.dumps([d.to_json() for d in devices], indent=2))
        return
    typer.echo(
        f"{'DEVICE':<22} {'STATE':<13} {'OWNER':<14} {'PLATFORM':<9} {'OWNERSHIP':<10} "
        f"{'LAST REPORT (UTC)':<17} REASONS"
    )
    for d in devices:
        typer.echo(
            f"{d.device_id:<22} {d.state:<13} {d.username:<14} {d.platform or '-':<9} "
            f"{d.ownership:<10} {_when(d.last_report_at):<17} {','.join(d.reasons) or '-'}"
        )


def _show(device: DeviceRecord) -> None:
    echo = typer.echo
    echo(f"device:       {device.device_id}")
    echo(f"name:         {device.name}")
    echo(f"owner:        {device.username}")
    echo(f"platform:     {device.platform or 'unknown (no posture yet)'}")
    echo(f"ownership:    {device.ownership}")
    echo(f"state:        {device.state}")
    echo(f"reasons:      {', '.join(device.reasons) or '-'}")
    echo(f"enrolled:     {_when(device.enrolled_at)} UTC")
    echo(f"last report:  {_when(device.last_report_at)}")
    echo(
        f"certificate:  {device.certificate_serial} (until {_when(device.certificate_expires_at)})"
    )
    echo(f"browsers:     {device.browsers} bound (nevertrust agent bind-browser)")
    for key, value in (device.posture or {}).items():
        echo(f"  {key + ':':<21} {'unknown' if value is None else value}")


@app.command("show")
def show(
    ctx: typer.Context,
    device_id: str = typer.Argument(..., metavar="ID", help="Device id (dev_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One device with its last posture."""
    with open_services(ctx) as svc:
        device = svc.devices.get(device_id)
    if as_json:
        typer.echo(json.dumps(device.to_json(), indent=2))
    else:
        _show(device)


@app.command("quarantine")
def quarantine(
    ctx: typer.Context,
    device_id: str = typer.Argument(..., metavar="ID", help="Device id (dev_...)."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Quarantine a device at once, whatever it reports, until released."""
    with open_services(ctx) as svc:
        changed = svc.devices.quarantine(device_id, actor=actor(), reason=reason)
        svc.notify_server()
    typer.echo(
        f"device {device_id} is quarantined" if changed else f"device {device_id} already was"
    )


@app.command("release")
def release(
    ctx: typer.Context,
    device_id: str = typer.Argument(..., metavar="ID", help="Device id (dev_...)."),
) -> None:
    """End a quarantine; the device is judged on its last posture again."""
    with open_services(ctx) as svc:
        changed = svc.devices.release(device_id, actor=actor())
        state = svc.devices.get(device_id).state
        svc.notify_server()
    typer.echo(
        f"device {device_id} released: now {state}"
        if changed
        else f"device {device_id} was not quarantined ({state})"
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    device_id: str = typer.Argument(..., metavar="ID", help="Device id (dev_...)."),
) -> None:
    """Forget a device: its certificate and its reports are refused from now on."""
    with open_services(ctx) as svc:
        device = svc.devices.remove(device_id, actor=actor())
        svc.notify_server()
    typer.echo(f"removed device {device_id} ({device.name}, {device.username})")


def _policy_lines(policy: CompliancePolicy) -> list[str]:
    def flag(value: bool) -> str:
        return "required" if value else "-"

    age = policy.max_patch_age_days
    return [
        f"{policy.platform}:" + ("" if policy.updated_at else " (default)"),
        f"  min OS version:     {policy.min_os_version or '-'}",
        f"  max patch age:      {'-' if age is None else f'{age} days'}",
        f"  disk encryption:    {flag(policy.require_disk_encryption)}",
        f"  firewall:           {flag(policy.require_firewall)}",
        f"  EDR:                {flag(policy.require_edr)}",
        f"  screen lock:        {flag(policy.require_screen_lock)}",
    ]


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    platform: str | None = typer.Argument(None, help="linux, macos or windows (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What a device must show to be compliant, per platform."""
    with open_services(ctx) as svc:
        policies = [svc.devices.policy(platform)] if platform else svc.devices.policies()
    if as_json:
        data = [p.to_json() for p in policies]
        typer.echo(json.dumps(data[0] if platform else data, indent=2))
        return
    for policy in policies:
        for line in _policy_lines(policy):
            typer.echo(line)


def _patch_age(value: str) -> int | None:
    if value.strip().lower() in ("none", "off", "-"):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"--max-patch-age: expected days or 'none', got {value!r}") from None


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    platform: str = typer.Argument(..., help="linux, macos or windows."),
    min_os_version: str | None = typer.Option(
        None, "--min-os-version", help="Oldest OS version allowed, e.g. 12.7 ('none': any)."
    ),
    max_patch_age: str | None = typer.Option(
        None, "--max-patch-age", help="Days since the last OS update ('none': no limit)."
    ),
    require_encryption: bool | None = typer.Option(
        None, "--require-encryption/--no-require-encryption", help="Encrypted system disk."
    ),
    require_firewall: bool | None = typer.Option(
        None, "--require-firewall/--no-require-firewall", help="Host firewall active."
    ),
    require_edr: bool | None = typer.Option(
        None, "--require-edr/--no-require-edr", help="An endpoint security agent running."
    ),
    require_screen_lock: bool | None = typer.Option(
        None, "--require-screen-lock/--no-require-screen-lock", help="Idle screen lock."
    ),
) -> None:
    """Change what a platform's devices must show; options left out keep their values.

    Devices of the platform are judged again at once.
    """
    change: dict[str, Any] = {}
    if min_os_version is not None:
        change["min_os_version"] = min_os_version
    if max_patch_age is not None:
        change["max_patch_age_days"] = _patch_age(max_patch_age)
    for key, value in (
        ("require_disk_encryption", require_encryption),
        ("require_firewall", require_firewall),
        ("require_edr", require_edr),
        ("require_screen_lock", require_screen_lock),
    ):
        if value is not None:
            change[key] = value
    with open_services(ctx) as svc:
        policy = svc.devices.set_policy(platform, change, actor=actor())
        svc.notify_server()
    for line in _policy_lines(policy):
        typer.echo(line)
