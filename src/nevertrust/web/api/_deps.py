"""Dependencies shared by API routes: the services and the calling admin."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from nevertrust.app import Services
from nevertrust.errors import Forbidden, Unauthenticated
from nevertrust.identity import ADMIN_GROUP
from nevertrust.identity.api_keys import Scope, parse_key, scope_allows
from nevertrust.web.csrf import CSRF_COOKIE, CsrfTokens

__all__ = ["Admin", "current_admin", "services"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


@dataclass(frozen=True, slots=True)
class Admin:
    name: str
    key_prefix: str | None = None  # set when the caller used an API key

    @property
    def actor(self) -> str:
        # The key's prefix (never its secret) says which of the account's keys acted.
        suffix = f"/key:{self.key_prefix}" if self.key_prefix else ""
        return f"user:{self.name}{suffix}"


async def current_admin(request: Request, svc: Services = Depends(services)) -> Admin:
    """A member of the admins group, by portal session or by service-account API key.

    Cookie callers need the CSRF header on unsafe methods. Bearer callers send no cookies,
    so a forged cross-site request cannot carry their credential: no CSRF check applies.
    """
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return await run_in_threadpool(_key_holder, svc, request, authorization)
    token = request.cookies.get("nt_session", "")
    found = await run_in_threadpool(svc.sessions.portal_session, token) if token else None
    if found is None:
        raise Unauthenticated("sign in at the portal first, or send an API key")
    _session, user = found
    if ADMIN_GROUP not in user.groups:
        raise Forbidden(f"the API is for members of the {ADMIN_GROUP!r} group")
    if request.method not in _SAFE:
        CsrfTokens(svc.master_key).check(
            request.cookies.get(CSRF_COOKIE), request.headers.get("x-csrf-token")
        )
    return Admin(user.name)


def _key_holder(svc: Services, request: Request, authorization: str) -> Admin:
    """Authenticate ``Authorization: Bearer ntk_...``; the key's scope caps the methods.

    The scope only narrows: the account must still be in the admins group, exactly like a
    person, so API authorization stays group-based and a key grants no standing rights.
    """
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("expected 'Authorization: Bearer ntk_...' with a service-account key")
    source = request.client.host if request.client else ""
    accounts = svc.service_accounts
    parsed = parse_key(credential.strip()[:200])
    # Key guessing counts against the same bans as password guessing: per key prefix and,
    # more usefully, per source address (shared with sign-in failures).
    subject = f"api-key:{parsed.prefix if parsed else '-'}"
    found = None
    if svc.regulator.banned(subject, source):
        accounts.reject(parsed.prefix if parsed else "", "banned", source_ip=source)
    else:
        found = accounts.authenticate(credential.strip(), source_ip=source)
        if found is None:
            svc.regulator.record_failure(subject, source)
    if found is None:
        raise Unauthenticated(
            "invalid API key: it is malformed, unknown, revoked or expired, "
            "or its service account is disabled"
        )
    user, key = found
    if ADMIN_GROUP not in user.groups:
        accounts.reject(key.prefix, "not-in-admins", source_ip=source, account=user.name)
        raise Forbidden(
            f"service account {user.name!r} is not in the {ADMIN_GROUP!r} group, "
            "which the API requires"
        )
    if not scope_allows(key.scopes, request.method):
        accounts.reject(key.prefix, "insufficient-scope", source_ip=source, account=user.name)
        raise Forbidden(
            f"API key {key.prefix} has scope {' '.join(key.scopes)}; "
            f"{request.method} needs {Scope.WRITE}"
        )
    return Admin(user.name, key_prefix=key.prefix)
