"""The ``nevertrust`` command.

``nevertrust agent ...`` runs on people's laptops every few minutes, so it is dispatched
before the other nouns are imported: they load the server stack (about 1 s), the agent
needs none of it.
"""

from __future__ import annotations

import sys

from nevertrust.cli import errors as _errors
from nevertrust.errors import NeverTrustError

__all__ = ["main"]


def main() -> None:
    try:
        if sys.argv[1:2] == ["agent"]:
            from nevertrust.cli.agent import app as agent

            agent(args=sys.argv[2:], prog_name="nevertrust agent")
        else:
            from nevertrust.cli._root import app

            app()
    except NeverTrustError as exc:
        sys.exit(_errors.report(exc))
