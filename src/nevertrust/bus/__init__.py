"""Events that tell every process a decision input changed."""

from __future__ import annotations

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.bus.memory import MemoryBus

__all__ = ["ChangeEvent", "MemoryBus", "Topic"]
