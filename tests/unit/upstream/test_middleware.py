"""AssertionMiddleware in front of a Starlette app, verifying against the JWKS the real
portal serves (in-process, through httpx.ASGITransport): who gets in, what handlers see,
how a key rotation and an unreachable portal are handled."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from nevertrust.app import Services
from nevertrust.clock import FixedClock
from nevertrust.gateway import AssertionSigner, SigningKey
from nevertrust.types import ASGIApp, Message
from nevertrust.upstream import AssertionMiddleware, Identity, JwksCache
from nevertrust.web.api import build_api
from nevertrust.web.portal import PortalContext, build_portal

ISSUER = "http://auth.localhost"
AUDIENCE = "http://wiki.localhost"
JWKS_URL = ISSUER + "/.well-known/jwks.json"
HOUR = timedelta(hours=1)


async def whoami(request: Request) -> JSONResponse:
    me: Identity = request.state.nevertrust
    return JSONResponse(
        {
            "subject": me.subject,
            "name": me.name,
            "email": me.email,
            "groups": list(me.groups),
            "amr": list(me.amr),
            "auth_time": me.auth_time.isoformat(),
            "jti": me.claims["jti"],
            "lifespan": request.state.started,  # lifespan state still reaches handlers
        }
    )


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok " + str(hasattr(request.state, "nevertrust")))


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.state.nevertrust.name)
    await websocket.close()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}


def upstream() -> Starlette:
    return Starlette(
        routes=[
            Route("/", whoami),
            Route("/healthz", healthz),
            WebSocketRoute("/ws", socket),
        ],
        lifespan=lifespan,
    )


def sign(key: SigningKey, *, audience: str = AUDIENCE, age: timedelta = timedelta(0)) -> str:
    now = datetime.now(UTC) - age  # the middleware checks expiry on the wall clock
    return AssertionSigner(key=key, issuer=ISSUER, ttl_seconds=60).sign(
        audience=audience, subject="42", name="alice", groups=["staff", "ops"],
        email="alice@example.com", auth_methods=["mfa", "pwd"],
        auth_time=now - timedelta(minutes=5), now=now,
    )  # fmt: skip


class Upstream:
    """The protected app and ways to call it, with the portal serving the JWKS."""

    def __init__(self, svc: Services, jwks_app: ASGIApp | None = None, **options: Any) -> None:
        portal = jwks_app or build_portal(PortalContext(svc), api=build_api(svc))
        self.jwks_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=portal))
        self.middleware = AssertionMiddleware(
            upstream(), jwks_url=JWKS_URL, issuer=ISSUER, audience=AUDIENCE,
            jwks_host_header="auth.localhost", http_client=self.jwks_client, **options,
        )  # fmt: skip
        middleware = self.middleware

        async def server(scope: Any, receive: Any, send: Any) -> None:
            # What uvicorn does after a lifespan that yielded state: a copy per request.
            # (ASGITransport runs no lifespan itself.)
            await middleware({**scope, "state": {"started": True}}, receive, send)

        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=server), base_url=AUDIENCE
        )

    def get(self, token: str | None, path: str = "/") -> Any:
        headers = {"x-nevertrust-assertion": token} if token is not None else {}
        return self.client.get(path, headers=headers)

    @property
    def fetches(self) -> int:
        return self.middleware.jwks.fetches


@pytest.fixture
async def up(services: Services) -> AsyncIterator[Upstream]:
    u = Upstream(services)
    yield u
    await u.client.aclose()
    await u.jwks_client.aclose()


async def test_a_valid_assertion_reaches_the_handler_with_the_identity(
    up: Upstream, services: Services
) -> None:
    response = await up.get(sign(services.keys.active()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body | {"auth_time": None, "jti": None} == {
        "subject": "42", "name": "alice", "email": "alice@example.com",
        "groups": ["staff", "ops"], "amr": ["mfa", "pwd"], "auth_time": None, "jti": None,
        "lifespan": True,
    }  # fmt: skip
    assert datetime.fromisoformat(body["auth_time"]).tzinfo is not None


async def test_missing_assertion_is_refused_with_401_json(up: Upstream) -> None:
    response = await up.get(None)
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing-assertion",
        "detail": "no identity assertion: reach this app through NeverTrust",
    }
    assert up.fetches == 0  # refused before any JWKS work


def _unsigned(**claims: object) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return part({"alg": "none", "typ": "JWT"}) + "." + part(dict(claims)) + "."


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (lambda k: sign(k, audience="http://other.localhost"), "audience"),
        (lambda k: sign(k, age=timedelta(minutes=10)), "expired"),
        (lambda k: sign(k)[:-4] + "AAAA", "signature"),
        (lambda k: _unsigned(iss=ISSUER, aud=AUDIENCE, sub="1", name="mallory"), "ES256"),
        (lambda k: "not-a-jwt", "not a JWT"),
    ],
    ids=["other-app", "expired", "tampered", "alg-none", "garbage"],
)
async def test_invalid_assertions_are_refused_with_401_and_the_reason(
    up: Upstream, services: Services, token: Callable[[SigningKey], str], detail: str
) -> None:
    response = await up.get(token(services.keys.active()))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid-assertion"
    assert detail.lower() in response.json()["detail"].lower()


async def test_two_assertion_headers_are_refused(up: Upstream, services: Services) -> None:
    token = sign(services.keys.active())
    response = await up.client.get(
        "/", headers=[("x-nevertrust-assertion", token), ("x-nevertrust-assertion", token)]
    )
    assert response.status_code == 401
    assert "more than one" in response.json()["detail"]


async def test_exempt_paths_pass_without_an_assertion_or_an_identity(services: Services) -> None:
    u = Upstream(services, exempt_paths=["/healthz"])
    response = await u.get(None, "/healthz")
    assert (response.status_code, response.text) == (200, "ok False")
    assert (await u.get(None, "/healthz/")).status_code == 401  # exact paths only
    await u.client.aclose()
    await u.jwks_client.aclose()


async def test_after_a_rotation_the_new_key_is_fetched_once_and_the_old_one_still_verifies(
    up: Upstream, services: Services
) -> None:
    old = services.keys.active()
    assert (await up.get(sign(old))).status_code == 200
    assert up.fetches == 1
    up.middleware.jwks = JwksCache(  # no wait between early refetches in this test
        JWKS_URL, http_client=up.jwks_client, min_refetch_seconds=0
    )
    assert (await up.get(sign(old))).status_code == 200

    services.keys.rotate(actor="user:root", overlap=HOUR)
    new = services.keys.active()
    assert (await up.get(sign(new))).status_code == 200  # unknown kid: refetched
    assert up.fetches == 2
    assert (await up.get(sign(new))).status_code == 200
    assert (await up.get(sign(old))).status_code == 200  # overlap: still published
    assert up.fetches == 2


async def test_a_retired_key_stops_verifying_once_the_copy_is_refreshed(
    services: Services, clock: FixedClock
) -> None:
    u = Upstream(services, refresh_seconds=0)  # refetch on every request
    old = services.keys.active()
    services.keys.rotate(actor="user:root", overlap=HOUR)
    assert (await u.get(sign(old))).status_code == 200
    clock.advance(HOUR)
    response = await u.get(sign(old))
    assert response.status_code == 401
    assert "unknown key" in response.json()["detail"]
    await u.client.aclose()
    await u.jwks_client.aclose()


async def test_unknown_key_ids_refetch_at_most_once_per_interval(
    up: Upstream, services: Services
) -> None:
    up.middleware.jwks = JwksCache(JWKS_URL, http_client=up.jwks_client, min_refetch_seconds=3600)
    assert (await up.get(sign(services.keys.active()))).status_code == 200
    for n in range(20):
        stranger = SigningKey(
            kid=f"made-up-{n}", private_key=ec.generate_private_key(ec.SECP256R1())
        )
        response = await up.get(sign(stranger))
        assert response.status_code == 401
        assert "unknown key" in response.json()["detail"]
    assert up.fetches == 1


async def test_concurrent_requests_share_one_jwks_fetch(services: Services) -> None:
    gate = asyncio.Event()
    portal = build_portal(PortalContext(services), api=build_api(services))

    async def slow_portal(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await portal(scope, receive, send)

    u = Upstream(services, jwks_app=slow_portal)
    token = sign(services.keys.active())
    requests = asyncio.gather(*(u.get(token) for _ in range(10)))
    await asyncio.sleep(0.05)  # every request is now waiting on the one fetch
    gate.set()
    responses = await requests
    assert [r.status_code for r in responses] == [200] * 10
    assert u.fetches == 1
    await u.client.aclose()
    await u.jwks_client.aclose()


async def _error_portal(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 500, "headers": []})
    await send({"type": "http.response.body", "body": b"boom"})


async def test_an_unreachable_jwks_fails_closed_with_503(services: Services) -> None:
    u = Upstream(services, jwks_app=_error_portal)
    response = await u.get(sign(services.keys.active()))
    assert response.status_code == 503
    assert response.json()["error"] == "jwks-unavailable"
    assert "HTTP 500" in response.json()["detail"]
    await u.client.aclose()
    await u.jwks_client.aclose()


async def test_a_connection_failure_fails_closed_without_hammering_the_portal(
    services: Services,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    jwks_client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    middleware = AssertionMiddleware(
        upstream(), jwks_url=JWKS_URL, issuer=ISSUER, audience=AUDIENCE, http_client=jwks_client
    )
    middleware.jwks = JwksCache(JWKS_URL, http_client=jwks_client, min_refetch_seconds=3600)
    middleware_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url=AUDIENCE
    )
    token = sign(services.keys.active())
    for _ in range(5):
        response = await middleware_client.get("/", headers={"x-nevertrust-assertion": token})
        assert response.status_code == 503
        assert "ConnectError" in response.json()["detail"]
    assert middleware.jwks.fetches == 1  # failures are remembered for the interval
    await middleware_client.aclose()
    await jwks_client.aclose()


async def run_websocket(app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Open a websocket to ``app`` the way a server would; returns what the app sent."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[Message] = []

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] in ("websocket.close", "websocket.send"):
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "query_string": b"",
             "headers": headers, "scheme": "ws", "server": ("127.0.0.1", 80),
             "asgi": {"version": "3.0"}, "subprotocols": [], "state": {}}  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return sent


async def test_websocket_with_a_valid_assertion_is_accepted_with_the_identity(
    up: Upstream, services: Services
) -> None:
    token = sign(services.keys.active()).encode()
    sent = await run_websocket(up.middleware, [(b"x-nevertrust-assertion", token)])
    assert [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "alice"


async def test_websocket_without_a_valid_assertion_is_closed_with_policy_violation(
    up: Upstream, services: Services
) -> None:
    for headers in ([], [(b"x-nevertrust-assertion", b"not-a-jwt")]):
        sent = await run_websocket(up.middleware, headers)
        assert [(m["type"], m["code"]) for m in sent] == [("websocket.close", 1008)]
        assert sent[0]["reason"].startswith(("missing-assertion", "invalid-assertion"))


async def test_websocket_is_closed_try_again_later_when_the_jwks_is_unreachable(
    services: Services,
) -> None:
    u = Upstream(services, jwks_app=_error_portal)
    token = sign(services.keys.active()).encode()
    sent = await run_websocket(u.middleware, [(b"x-nevertrust-assertion", token)])
    assert [(m["type"], m["code"]) for m in sent] == [("websocket.close", 1013)]
    await u.client.aclose()
    await u.jwks_client.aclose()


async def test_lifespan_passes_through_to_the_app(services: Services) -> None:
    u = Upstream(services)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    for message in ("lifespan.startup", "lifespan.shutdown"):
        await inbox.put({"type": message})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await asyncio.wait_for(u.middleware(scope, inbox.get, send), timeout=10)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert scope["state"] == {"started": True}
    assert u.fetches == 0
    await u.client.aclose()
    await u.jwks_client.aclose()


def test_identity_is_frozen() -> None:
    identity = Identity.from_claims(
        {"sub": "42", "name": "alice", "groups": ["a"], "amr": ["pwd"], "auth_time": 0}
    )
    with pytest.raises(AttributeError):
        identity.name = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        identity.claims["name"] = "mallory"  # type: ignore[index]
