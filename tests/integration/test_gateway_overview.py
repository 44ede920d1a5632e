"""The console's Gateway page and /api/v1/gateway say where forward-auth is answered, to
whom, and how each app is reached; both are for admins only."""

from __future__ import annotations

import httpx

from nevertrust.app import Services

from ._support import client_for


async def test_admins_see_forward_auth_endpoints_and_each_apps_door(
    admin_and_alice: Services, admin_browser: httpx.AsyncClient
) -> None:
    svc = admin_and_alice
    svc.settings.gateway.forward_auth_port = 9901
    svc.catalog.add_app("wiki", upstream="http://127.0.0.1:9000", actor="admin:root")
    svc.catalog.add_app("db", upstream="tcp://127.0.0.1:5432", actor="admin:root")

    api = await admin_browser.get("/api/v1/gateway")
    page = await admin_browser.get("/console/gateway")

    assert api.status_code == 200
    body = api.json()
    urls = [e["url"] for e in body["forward_auth"]["endpoints"]]
    assert "http://127.0.0.1:9901/.nevertrust/authz/auth-request" in urls
    assert "http://127.0.0.1:8080/.nevertrust/authz/forward-auth" in urls
    assert body["forward_auth"]["clients"] == ["127.0.0.0/8", "::1/128"]
    kinds = {a["name"]: (a["kind"], a["how"]) for a in body["apps"]}
    assert kinds["db"] == ("tcp", "nevertrust connect db --local-port PORT")
    assert kinds["wiki"][0] == "web"
    assert page.status_code == 200
    assert "http://127.0.0.1:9901/.nevertrust/authz/auth-request" in page.text
    assert "nevertrust connect db --local-port PORT" in page.text


async def test_people_who_are_not_admins_are_refused(admin_and_alice: Services) -> None:
    async with client_for(admin_and_alice, "alice") as alice:
        api = await alice.get("/api/v1/gateway")
        page = await alice.get("/console/gateway", follow_redirects=False)
    assert api.status_code == 403
    assert page.status_code in (303, 403)
