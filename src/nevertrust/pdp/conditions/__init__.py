"""Compiled conditions: one module per kind of attribute (who, how, device, where, when).

A condition is compiled once per snapshot into a ``Condition``: a name, a fast test, and
a function that explains a failure (expected versus got), used only on denials.
"""

from __future__ import annotations

from nevertrust.pdp.conditions._base import Condition
from nevertrust.pdp.conditions.build import build_conditions

__all__ = ["Condition", "build_conditions"]
