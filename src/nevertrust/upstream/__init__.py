"""Verify NeverTrust's signed identity assertion in a Python upstream.

``AssertionMiddleware`` wraps any ASGI app (Starlette, FastAPI, Django's ASGI handler):
it admits only requests carrying a valid ``X-NeverTrust-Assertion`` and hands handlers
the verified ``Identity`` as ``request.state.nevertrust``. See docs/assertion.md.

This package needs only the assertion verifier, PyJWT and httpx, not the server.
"""

from __future__ import annotations

from nevertrust.upstream._identity import Identity, MissingAssertion
from nevertrust.upstream._jwks import JwksCache, JwksUnavailable
from nevertrust.upstream._middleware import AssertionMiddleware

__all__ = ["AssertionMiddleware", "Identity", "JwksCache", "JwksUnavailable", "MissingAssertion"]
