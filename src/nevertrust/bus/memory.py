"""In-process event bus: a genuine single-node implementation, also used by unit tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from nevertrust.bus.events import ChangeEvent

__all__ = ["EventHandler", "MemoryBus"]

EventHandler = Callable[[ChangeEvent], None]
_log = logging.getLogger("nevertrust.bus")


class MemoryBus:
    """Delivers each published event synchronously to every subscriber, in order."""

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def publish(self, event: ChangeEvent) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - one bad subscriber must not starve the others
                _log.exception("event_handler_failed", extra={"topic": event.topic})
