"""Catalog errors."""

from __future__ import annotations

from nevertrust.errors import InvalidInput, NotFound

__all__ = ["ConfigFileError", "InvalidUpstream", "UnknownApp"]


class UnknownApp(NotFound):
    code = "unknown-app"


class InvalidUpstream(InvalidInput):
    code = "invalid-upstream"


class ConfigFileError(InvalidInput):
    """A declarative file is wrong; says where (file, line, column) and what was expected."""

    code = "invalid-config-file"

    def __init__(self, message: str, *, file: str, line: int, column: int) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}", file=file, line=line, column=column)
        self.file = file
        self.line = line
        self.column = column
