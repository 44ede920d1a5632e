"""Device cookies: a browser that has signed in as someone before is not a stranger.

Per-name bans stop password guessing, but they also let anyone lock a person out by
typing three wrong passwords for them every few minutes (the lockout denial of service of
Keycloak GHSA-cq42-vhv7-xr7p). OWASP's answer is the device cookie: after a successful
sign-in the browser gets a cookie, signed with the master key, naming the user and a random
device id. A later attempt for that user from a browser holding a valid cookie is counted
and banned per device instead of per name, so an attacker's failures elsewhere do not
lock the owner out, and a stolen cookie still allows only a handful of guesses.
"""

from __future__ import annotations

import base64
import secrets

from nevertrust.crypto import MasterKey, constant_time_equal

__all__ = ["DEVICE_COOKIE", "DeviceCookies"]

DEVICE_COOKIE = "nt_device"
_PURPOSE = "device-cookie"
_MAX_VALUE = 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DeviceCookies:
    def __init__(self, master_key: MasterKey) -> None:
        self._key = master_key

    def _mac(self, username: str, device_id: str) -> str:
        message = f"{username.strip().lower()}\n{device_id}".encode()
        return _b64(self._key.sign(_PURPOSE, message))[:32]

    def issue(self, username: str) -> str:
        """A new cookie value for a browser that just signed in as ``username``."""
        device_id = _b64(secrets.token_bytes(12))
        return f"{device_id}.{self._mac(username, device_id)}"

    def device_for(self, value: str, username: str) -> str | None:
        """The device id if ``value`` is a cookie this platform issued for ``username``."""
        if not value or len(value) > _MAX_VALUE or not username:
            return None
        device_id, _, mac = value.partition(".")
        if not device_id or not mac:
            return None
        if not constant_time_equal(mac, self._mac(username, device_id)):
            return None
        return device_id
