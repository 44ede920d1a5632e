"""CSRF protection for the portal's forms and cookie-authenticated API calls.

Synchronizer token bound to a per-browser random cookie: the form token is
HMAC(key, cookie). A cross-site attacker can make the browser send the cookie but can
neither read it nor compute the token. Sibling app hosts cannot plant the cookie either:
browsers refuse ``Domain=localhost`` and we never set a parent-domain cookie.
"""

from __future__ import annotations

import base64

from nevertrust.crypto import MasterKey, constant_time_equal, new_token
from nevertrust.errors import Forbidden

__all__ = ["CSRF_COOKIE", "CsrfFailed", "CsrfTokens"]

CSRF_COOKIE = "nt_csrf"


class CsrfFailed(Forbidden):
    code = "csrf-failed"


class CsrfTokens:
    def __init__(self, master_key: MasterKey) -> None:
        self._master = master_key

    @staticmethod
    def new_cookie() -> str:
        return new_token()

    def token_for(self, cookie: str) -> str:
        mac = self._master.sign("csrf", cookie.encode())
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def check(self, cookie: str | None, token: str | None) -> None:
        if not cookie or not token:
            raise CsrfFailed("missing CSRF token: reload the page and try again")
        if not constant_time_equal(self.token_for(cookie), token):
            raise CsrfFailed("CSRF token does not match: reload the page and try again")
