"""HTML pages the gateway itself answers with: deny, upstream errors, unavailable."""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["render_page"]

_env = Environment(
    loader=PackageLoader("nevertrust.gateway", "templates"),
    autoescape=select_autoescape(["html"]),
)
_page = _env.get_template("page.html")


def render_page(
    *,
    status: int,
    title: str,
    message: str = "",
    reasons: Sequence[tuple[str, str]] = (),
    rule: str = "",
    trace: Sequence[tuple[str, str, str]] = (),
    links: Sequence[tuple[str, str]] = (),
    user: str = "",
    app: str = "",
    request_id: str = "",
) -> str:
    return _page.render(
        status=status,
        title=title,
        message=message,
        reasons=reasons,
        rule=rule,
        trace=trace,
        links=links,
        user=user,
        app=app,
        request_id=request_id,
    )
