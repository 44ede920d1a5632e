"""What every portal handler needs: services, templates, CSRF, and the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from nevertrust.app import Services
from nevertrust.identity import ADMIN_GROUP, IssuedSession, SessionKind, SessionRecord, UserRecord
from nevertrust.identity.device_cookies import DEVICE_COOKIE
from nevertrust.web.csrf import CSRF_COOKIE, CsrfFailed, CsrfTokens

__all__ = ["PENDING_COOKIE", "SESSION_COOKIE", "PortalContext", "SignedIn"]

SESSION_COOKIE = "nt_session"
# A device cookie outlives sessions: it marks a browser its user signed in with before.
_DEVICE_AGE = 180 * 24 * 3600
# How recent a second-factor sign-in must be to change second factors on /account.
FRESH_FACTOR = timedelta(minutes=10)
# Holds a session that passed the password step and still owes a second factor.
PENDING_COOKIE = "nt_pending"
_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: SessionRecord
    user: UserRecord

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.user.groups


class PortalContext:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.csrf = CsrfTokens(services.master_key)
        self.templates = Jinja2Templates(directory=str(_TEMPLATES))
        self.secure_cookies = services.settings.public_scheme == "https"

    def signed_in(self, request: Request) -> SignedIn | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        found = self.services.sessions.portal_session(token) if token else None
        return None if found is None else SignedIn(*found)

    async def admin_gate(self, request: Request) -> SignedIn | Response:
        """The console's one gate: sign in first, then members of the admins group only."""
        me = await run_in_threadpool(self.signed_in, request)
        if me is None:
            return RedirectResponse("/login", status_code=303)
        if not me.is_admin:
            return self.render(
                request,
                "message.html",
                {
                    "title": "Administrators only",
                    "message": "The console is for members of the admins group.",
                },
                status_code=403,
                signed_in=me,
            )
        return me

    def factor_is_fresh(self, me: SignedIn) -> bool:
        """A second-factor sign-in of the last 10 minutes, or no second factor to ask for.

        Changing second factors (or what counts as this person's device) needs it:
        otherwise a stolen session cookie alone could remove a factor or mint recovery
        codes. Users without any factor yet have nothing to protect and pass.
        """
        if not self.services.auth.second_factors(me.user.id):
            return True
        session = me.session
        age = self.services.clock.now() - session.auth_time
        return "mfa" in session.auth_methods and age <= FRESH_FACTOR

    def fresh_factor_required(self, me: SignedIn, *, back: str) -> Response | None:
        """None when ``factor_is_fresh``; else the redirect to /stepup, back to ``back``."""
        if self.factor_is_fresh(me):
            return None
        query = urlencode(
            {"methods": "mfa", "max_age": int(FRESH_FACTOR.total_seconds()), "next": back}
        )
        return RedirectResponse(f"/stepup?{query}", status_code=303)

    def pending(self, request: Request) -> SignedIn | None:
        token = request.cookies.get(PENDING_COOKIE, "")
        found = self.services.auth.pending_session(token) if token else None
        return None if found is None else SignedIn(*found)

    def issue_session_cookie(self, response: Response, issued: IssuedSession) -> None:
        """Give the browser a session: a pending one, or a full one (ending any pending)."""
        record = issued.record
        lifetime = int((record.expires_at - record.created_at).total_seconds())
        if record.kind is SessionKind.PENDING:
            self.set_cookie(response, PENDING_COOKIE, issued.token, max_age=lifetime)
            return
        self.set_cookie(response, SESSION_COOKIE, issued.token, max_age=lifetime)
        self.set_cookie(response, PENDING_COOKIE, "", max_age=0)
        if issued.device_cookie:
            self.set_cookie(response, DEVICE_COOKIE, issued.device_cookie, max_age=_DEVICE_AGE)

    def client_ip(self, request: Request) -> str:
        return request.client.host if request.client else ""

    def csrf_cookie(self, request: Request) -> tuple[str, bool]:
        """The browser's CSRF cookie value, and whether it must be (re)set."""
        existing = request.cookies.get(CSRF_COOKIE)
        if existing and 20 <= len(existing) <= 100:
            return existing, False
        return self.csrf.new_cookie(), True

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
        signed_in: SignedIn | None = None,
    ) -> HTMLResponse:
        cookie, fresh = self.csrf_cookie(request)
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf_token": self.csrf.token_for(cookie),
                "me": signed_in,
                "portal_url": self.settings.portal_url,
                **context,
            },
            status_code=status_code,
        )
        if fresh:
            self.set_cookie(response, CSRF_COOKIE, cookie, max_age=None)
        self.harden(response)
        return response

    async def csrf_form(
        self,
        request: Request,
        *,
        back: tuple[str, str] | None = None,
        signed_in: SignedIn | None = None,
    ) -> FormData | Response:
        """The posted form once its CSRF token checks out, else the "Form expired" page."""
        form = await request.form()
        try:
            self.check_csrf(request, str(form.get("csrf_token", "")) or None)
        except CsrfFailed as exc:
            context: dict[str, Any] = {"title": "Form expired", "message": exc.message}
            if back is not None:
                context["links"] = [back]
            return self.render(
                request, "message.html", context, status_code=403, signed_in=signed_in
            )
        return form

    def check_csrf(self, request: Request, token: str | None) -> None:
        self.csrf.check(request.cookies.get(CSRF_COOKIE), token)

    def set_cookie(self, response: Response, name: str, value: str, *, max_age: int | None) -> None:
        # Host-only (no domain=): a cookie for auth.<domain> never reaches app hosts.
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    @staticmethod
    def harden(response: Response) -> None:
        response.headers["x-frame-options"] = "DENY"
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        response.headers["cache-control"] = "no-store"
        response.headers["content-security-policy"] = (
            "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self' "
            "http: https:; frame-ancestors 'none'"
        )
