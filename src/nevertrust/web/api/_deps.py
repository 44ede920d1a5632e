"""Dependencies shared by API routes: the services and the calling admin."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from nevertrust.app import Services
from nevertrust.errors import Forbidden, Unauthenticated
from nevertrust.identity import ADMIN_GROUP
from nevertrust.web.csrf import CSRF_COOKIE, CsrfTokens

__all__ = ["Admin", "current_admin", "services"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


@dataclass(frozen=True, slots=True)
class Admin:
    name: str

    @property
    def actor(self) -> str:
        return f"user:{self.name}"


async def current_admin(request: Request, svc: Services = Depends(services)) -> Admin:
    """A signed-in member of the admins group; unsafe methods also need the CSRF header."""
    token = request.cookies.get("nt_session", "")
    found = await run_in_threadpool(svc.auth.portal_session, token) if token else None
    if found is None:
        raise Unauthenticated("sign in at the portal first")
    _session, user = found
    if ADMIN_GROUP not in user.groups:
        raise Forbidden(f"the API is for members of the {ADMIN_GROUP!r} group")
    if request.method not in _SAFE:
        CsrfTokens(svc.master_key).check(
            request.cookies.get(CSRF_COOKIE), request.headers.get("x-csrf-token")
        )
    return Admin(user.name)
