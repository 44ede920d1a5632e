"""What a browser is told when a check does not allow: the same words at every door.

The built-in proxy and the forward-auth endpoints render these, so a denial explains itself
identically whether nginx, Caddy or NeverTrust itself stood in front of the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from nevertrust.domain import Effect, StepUp
from nevertrust.gateway.access import Check, Outcome
from nevertrust.gateway.pages import render_page

__all__ = ["UNDECIDED", "Page", "denial_page", "portal_location", "problem_page"]

UNDECIDED = "Access cannot be decided right now, so it is not granted. Try again shortly."

_DENY_TITLES = {
    Effect.DENY: "You don't have access to this application",
    Effect.STEP_UP: "This application needs a stronger sign-in",
    Effect.REQUIRE_DEVICE: "This application needs a compliant device",
}


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    html: str
    reason: str  # stable reason codes, comma-separated (X-NeverTrust-Reason)


def denial_page(check: Check, *, app_name: str, portal_url: str, request_id: str) -> Page:
    """The 403 (deny, or step-up a non-GET cannot follow) or 503 (unavailable) page."""
    if check.outcome is Outcome.UNAVAILABLE or check.decision is None:
        return Page(
            503,
            render_page(
                status=503,
                title="Access temporarily unavailable",
                message=check.message or UNDECIDED,
                request_id=request_id,
            ),
            "unavailable",
        )
    decision = check.decision
    principal = check.principal
    html = render_page(
        status=403,
        title=_DENY_TITLES.get(decision.effect, _DENY_TITLES[Effect.DENY]),
        reasons=[
            (str(r), e) for r, e in zip(decision.reasons, decision.explanations, strict=False)
        ],
        rule=decision.rule_id or "",
        trace=[(t.rule_id, t.failed_condition, t.detail) for t in decision.trace[:10]],
        links=[("Portal", portal_url + "/"), ("Sign out", "/.nevertrust/sign_out")],
        user=principal.name if principal is not None else "",
        app=app_name,
        request_id=request_id,
    )
    return Page(403, html, ",".join(decision.reasons))


def problem_page(status: int, title: str, message: str, *, request_id: str) -> Page:
    return Page(
        status,
        render_page(status=status, title=title, message=message, request_id=request_id),
        "bad-request" if status < 500 else "unavailable",
    )


def portal_location(
    portal_url: str, target_url: str, state: str, step_up: StepUp | None = None
) -> str:
    """Where to send a browser that must sign in (or step up) to reach ``target_url``."""
    location = (
        f"{portal_url}/authorize?rd={quote(target_url, safe='')}&state={quote(state, safe='')}"
    )
    if step_up is not None:
        methods = ",".join(sorted(step_up.methods))
        location += f"&methods={quote(methods, safe=',')}&max_age={step_up.max_age_seconds}"
    return location
