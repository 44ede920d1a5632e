"""Opening the services for a CLI command from --home / $NEVERTRUST_HOME."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from nevertrust.app import Services, build_services
from nevertrust.errors import InvalidInput
from nevertrust.settings import Settings, load_settings

__all__ = ["actor", "open_services", "read_input", "settings_from"]


def settings_from(ctx: typer.Context, *, config_file: Path | None = None) -> Settings:
    home: Path | None = ctx.obj.get("home") if ctx.obj else None
    return load_settings(config_file=config_file, overrides={"home": home})


@contextmanager
def open_services(ctx: typer.Context) -> Iterator[Services]:
    services = build_services(settings_from(ctx))
    try:
        yield services
    finally:
        services.close()


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def read_input(file: str) -> tuple[str, str]:
    """The text of ``file`` (``-`` for stdin) and how to name it in error messages."""
    if file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file} is not UTF-8 text") from exc
