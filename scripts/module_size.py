"""Warn about modules past 400 lines and fail past 600 (small modules with one job)."""

from __future__ import annotations

import sys
from pathlib import Path

WARN, FAIL = 400, 600


def main(root: str) -> int:
    failed = False
    for path in sorted(Path(root).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = sum(1 for _ in path.open(encoding="utf-8"))
        if lines > FAIL:
            print(f"error: {path} has {lines} lines (limit {FAIL}); split it")
            failed = True
        elif lines > WARN:
            print(f"warning: {path} has {lines} lines (aim for <= {WARN})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "src"))
