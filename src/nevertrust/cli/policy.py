"""nevertrust policy ..."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from pydantic import ValidationError

from nevertrust.cli._context import actor, open_services, read_input
from nevertrust.errors import InvalidInput
from nevertrust.pdp import json_schema, parse_policy_document
from nevertrust.pdp._durations import parse_duration
from nevertrust.policy import RequestSpec, decision_json, load_cases, run_cases

__all__ = ["app"]

app = typer.Typer(
    help="Conditional-access policies: apply, test, what-if, replay, history.",
    no_args_is_help=True,
)


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: str = typer.Option(..., "-f", "--file", help="Policy YAML, or - for stdin."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the diff only."),
) -> None:
    """Validate a policy document and put it in force on every replica."""
    text, source = read_input(file)
    with open_services(ctx) as svc:
        result = svc.policy.apply(text, file=source, actor=actor(), dry_run=dry_run)
        if result.version is not None:
            svc.notify_server()
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for line in result.summary:
        typer.echo(("would: " if dry_run else "") + line)
    if dry_run:
        typer.echo("dry run: valid, nothing written")
    elif result.version is None:
        typer.echo("no changes: this document is already in force")
    else:
        typer.echo(f"policy version {result.version} is in force")


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: str = typer.Option(..., "-f", "--file", help="Policy YAML, or - for stdin."),
) -> None:
    """Check a policy document without applying it."""
    text, source = read_input(file)
    with open_services(ctx) as svc:
        document, warnings = svc.policy.validate(text, file=source)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    rules = sum(len(p.rules) for p in document.policies)
    typer.echo(f"{source}: valid ({len(document.policies)} policies, {rules} rules)")


@app.command("show")
def show(
    ctx: typer.Context,
    version: int | None = typer.Option(None, "--version", help="A past version."),
) -> None:
    """Print the policy document in force (or a past version)."""
    with open_services(ctx) as svc:
        found = svc.policy.get(version) if version is not None else svc.policy.active()
    if found is None:
        typer.echo("# no policy applied yet: only `apps allow` rules decide access")
        return
    typer.echo(
        f"# version {found.version}, applied {found.applied_at:%Y-%m-%d %H:%M:%S} UTC "
        f"by {found.applied_by} from {found.source}"
    )
    typer.echo(found.document.rstrip("\n"))


@app.command("history")
def history(ctx: typer.Context) -> None:
    """List policy versions, newest first, with what each changed."""
    with open_services(ctx) as svc:
        versions = svc.policy.history()
    for v in versions:
        typer.echo(f"v{v.version}  {v.applied_at:%Y-%m-%d %H:%M:%S}  {v.applied_by}  {v.source}")
        for line in v.summary.splitlines():
            typer.echo(f"      {line}")


@app.command("rollback")
def rollback(
    ctx: typer.Context, version: int = typer.Argument(..., help="Version to restore.")
) -> None:
    """Put an earlier version back in force (recorded as a new version)."""
    with open_services(ctx) as svc:
        result = svc.policy.rollback(version, actor=actor())
        if result.version is not None:
            svc.notify_server()
    typer.echo(
        f"version {version} restored as version {result.version}"
        if result.version is not None
        else f"version {version} is already in force"
    )


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of policy documents (for editor completion)."""
    typer.echo(json.dumps(json_schema(), indent=2))


@app.command("test")
def test(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="YAML file of test cases."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy under test."),
) -> None:
    """Run policy test cases (request -> expected outcome). Exit 1 if any fails."""
    text, source = read_input(str(file))
    tests = load_cases(text, file=source)
    policy_path = policy or (file.parent / tests.policy if tests.policy else None)
    if policy_path is not None:
        # Fully offline, like `opa test`: no home or database needed.
        policy_text, policy_source = read_input(str(policy_path))
        document = parse_policy_document(policy_text, file=policy_source)
        results = run_cases(tests, policies=document, now=datetime.now(UTC))
    else:
        with open_services(ctx) as svc:
            results = svc.policy.run_tests(tests, document=svc.policy.active_document())
    failed = 0
    for result in results:
        if result.passed:
            typer.echo(f"PASS  {result.name}")
        else:
            failed += 1
            typer.echo(f"FAIL  {result.name}: {result.problem}")
            if result.decision.trace:
                for trace in result.decision.trace[:5]:
                    typer.echo(f"        {trace.rule_id}: {trace.failed_condition}: {trace.detail}")
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("what-if")
def what_if(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="User name (their current groups are used)."),
    app_name: str = typer.Option(..., "--app", help="App name."),
    method: str = typer.Option("GET", "--method"),
    path: str = typer.Option("/", "--path"),
    source_ip: str = typer.Option("", "--ip", help="Source address."),
    groups: str | None = typer.Option(None, "--groups", help="Comma-separated; overrides."),
    auth_methods: str = typer.Option("pwd", "--auth-methods", help="Comma-separated, e.g. pwd,otp"),
    auth_age: str = typer.Option("1m", "--auth-age", help="How long ago they signed in."),
    device: str | None = typer.Option(
        None, "--device", help="compliant | noncompliant (default: unknown device)"
    ),
    platform: str = typer.Option("", "--platform", help="Device platform, e.g. linux."),
    country: str | None = typer.Option(None, "--country"),
    risk: str | None = typer.Option(None, "--risk", help="low | medium | high | critical"),
    at: str | None = typer.Option(None, "--at", help="ISO time with zone; default now."),
    draft: str | None = typer.Option(None, "--draft", help="Decide under this draft policy."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what would be decided for a described request, and why."""
    try:
        spec = RequestSpec.model_validate(
            {
                "user": user,
                "app": app_name,
                "method": method,
                "path": path,
                "source_ip": source_ip,
                "groups": groups.split(",") if groups is not None else None,
                "auth_methods": [m for m in auth_methods.split(",") if m],
                "auth_age": auth_age,
                "device": None
                if device is None
                else {"compliant": device == "compliant", "platform": platform},
                "country": country,
                "risk": risk,
                "at": at,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"--{where.replace('_', '-')}: {first['msg']}") from exc
    draft_text = read_input(draft)[0] if draft else None
    with open_services(ctx) as svc:
        decision = svc.policy.what_if(spec, draft=draft_text)
    out = decision_json(decision)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(
        f"{out['effect'].upper()}  {', '.join(out['reasons'])}"
        + (f"  (rule {out['rule']})" if out["rule"] else "")
    )
    for text in out["explanations"]:
        typer.echo(f"  {text}")
    for trace in out["trace"]:
        if not trace["matched"]:
            typer.echo(
                f"  near miss {trace['rule']}: {trace['failed_condition']}: {trace['detail']}"
            )
    if "report_only" in out:
        shadow = out["report_only"]
        typer.echo(
            f"  report-only policies would decide: {shadow['effect']} "
            f"({', '.join(shadow['reasons'])})"
        )


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    file: str = typer.Option(..., "-f", "--file", help="Draft policy YAML."),
    since: str = typer.Option("7d", "--since", help="How far back, e.g. 24h or 7d."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Decide recorded requests again under a draft: who would be newly denied or allowed."""
    text, _source = read_input(file)
    try:
        window = timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise InvalidInput(f"--since: {exc}") from exc
    with open_services(ctx) as svc:
        report = svc.policy.replay(text, since=window)
    out = report.to_json()
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"replayed {out['replayed']} recorded decisions; {out['unchanged']} unchanged")
    for label, key in (("newly DENIED", "newly_denied"), ("newly ALLOWED", "newly_allowed")):
        rows = out[key]
        assert isinstance(rows, list)  # noqa: S101 - shape of to_json
        typer.echo(f"{label}: {len(rows)} user/app pair(s)")
        for row in rows:
            typer.echo(
                f"  {row['user']:<20} {row['app']:<16} {row['requests']:>6} request(s)  "
                f"e.g. {row['example_path']}  {', '.join(row['reasons'])}"
            )
