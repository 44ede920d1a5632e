"""Policy errors."""

from __future__ import annotations

from nevertrust.errors import InvalidInput

__all__ = ["PolicyError"]


class PolicyError(InvalidInput):
    """A policy document is wrong; says where (file, line, column) and what was expected."""

    code = "invalid-policy"

    def __init__(self, message: str, *, file: str, line: int, column: int) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}", file=file, line=line, column=column)
        self.file = file
        self.line = line
        self.column = column
