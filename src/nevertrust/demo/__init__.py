"""The built-in demo upstream ("whoami")."""

from __future__ import annotations

from nevertrust.demo.whoami import WhoAmI

__all__ = ["WhoAmI"]
