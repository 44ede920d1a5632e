"""Console: the gateway page (forward-auth endpoints, trusted proxies, apps' doors)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nevertrust.gateway.overview import gateway_overview
from nevertrust.web.portal._context import PortalContext, SignedIn

__all__ = ["routes"]


def routes(ctx: PortalContext) -> list[Route]:
    services = ctx.services

    async def show(request: Request) -> Response:
        me = await ctx.admin_gate(request)
        if not isinstance(me, SignedIn):
            return me
        overview = await run_in_threadpool(
            lambda: gateway_overview(services.settings, services.catalog.view().apps)
        )
        return ctx.render(request, "console/gateway.html", {"o": overview}, signed_in=me)

    return [Route("/console/gateway", show, methods=["GET"])]
