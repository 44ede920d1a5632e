"""The one place NeverTrust errors become CLI output and exit codes."""

from __future__ import annotations

import sys

from nevertrust.errors import NeverTrustError

__all__ = ["report"]


def report(exc: NeverTrustError) -> int:
    print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
    return exc.exit_code
