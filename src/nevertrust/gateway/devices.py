"""Which device a request comes from, and what the gateway knows about it, in memory.

Devices prove themselves in one of two ways. CLI, tunnel and API clients show the
certificate the platform CA issued them (``mtls.py`` reads it once per connection): its
device id and serial are matched against the device directory, and the serial must be
the device's *current* one (a replaced or removed device's old certificate proves
nothing). Browsers cannot show that certificate; their session was opened with a passkey
registered as the device's platform credential, and carries the device id
(``CachedSession.device_id``). Either way the device must belong to the signed-in user
(another person's laptop does not make my session trusted). The directory
is rebuilt whole on every ``device`` change event, so a quarantine or a report that made
a device noncompliant applies to the very next request, also on open connections.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from nevertrust.bus.events import ChangeEvent, Topic
from nevertrust.devices.models import DeviceView
from nevertrust.domain import DeviceState
from nevertrust.gateway.client_certs import ClientDevice

__all__ = ["DeviceDirectory", "DeviceFacts"]

_log = logging.getLogger("nevertrust.gateway.devices")


class DeviceFacts:
    """One device as decided on: its owner, serial and the states the PDP sees."""

    __slots__ = ("fresh", "last_report_at", "serial", "stale", "user_id")

    def __init__(
        self,
        *,
        user_id: int,
        serial: str,
        last_report_at: datetime | None,
        fresh: DeviceState,
        stale: DeviceState,
    ) -> None:
        self.user_id = user_id
        self.serial = serial
        self.last_report_at = last_report_at
        self.fresh = fresh  # while its last report is recent enough
        self.stale = stale  # afterwards: never compliant


DeviceSource = Callable[[], Iterable[DeviceView]]


class DeviceDirectory:
    def __init__(self, source: DeviceSource, *, stale_after: timedelta) -> None:
        self._source = source
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._devices: Mapping[str, DeviceFacts] = MappingProxyType({})
        self.loaded = False

    def __len__(self) -> int:
        return len(self._devices)

    def reload(self) -> bool:
        with self._lock:
            try:
                devices = {}
                for view in self._source():
                    facts = _facts(view)
                    devices[facts[0]] = facts[1]
            except Exception:  # noqa: BLE001 - keep the last good view; logged
                _log.exception("device_view_reload_failed")
                return False
            self._devices = MappingProxyType(devices)
            self.loaded = True
            return True

    def on_event(self, event: ChangeEvent) -> None:
        if event.topic in (Topic.DEVICE, Topic.USER, Topic.EVERYTHING):
            self.reload()

    def state_for(
        self, client: ClientDevice | None, user_id: int, now: datetime
    ) -> DeviceState | None:
        """The device state for a request, or None (unknown device) when the connection
        shows no certificate, a superseded one, or someone else's device."""
        if client is None:
            return None
        facts = self._devices.get(client.device_id)
        if facts is None or facts.serial != client.serial or facts.user_id != user_id:
            return None
        return self._judged(facts, now)

    def state_for_session(
        self, device_id: str | None, user_id: int, now: datetime
    ) -> DeviceState | None:
        """The device state for a browser session bound to ``device_id`` by its passkey,
        or None (unknown device) when unbound, removed, or someone else's device."""
        if device_id is None:
            return None
        facts = self._devices.get(device_id)
        if facts is None or facts.user_id != user_id:
            return None
        return self._judged(facts, now)

    def _judged(self, facts: DeviceFacts, now: datetime) -> DeviceState:
        last = facts.last_report_at
        if last is None or now - last > self._stale_after:
            return facts.stale
        return facts.fresh


def _facts(view: DeviceView) -> tuple[str, DeviceFacts]:
    compliant = view.state == "compliant"
    fresh = DeviceState(view.device_id, compliant, view.managed, view.platform, view.posture)
    stale = (
        fresh
        if not compliant
        else DeviceState(view.device_id, False, view.managed, view.platform, view.posture)
    )
    return view.device_id, DeviceFacts(
        user_id=view.user_id,
        serial=view.certificate_serial.lower(),
        last_report_at=view.last_report_at,
        fresh=fresh,
        stale=stale,
    )
