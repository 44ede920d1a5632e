"""Enforcement point: identity-aware reverse proxy and signed identity assertions."""

from __future__ import annotations

from nevertrust.gateway.assertion import (
    ASSERTION_HEADER,
    AssertionSigner,
    InvalidAssertion,
    verify_assertion,
)
from nevertrust.gateway.enforcer import APP_SESSION_COOKIE, STATE_COOKIE, Gateway, GatewayConfig
from nevertrust.gateway.keys import KeyService, SigningKey
from nevertrust.gateway.proxy import UpstreamProxy
from nevertrust.gateway.state import SessionCache, SnapshotHolder

__all__ = [
    "APP_SESSION_COOKIE",
    "ASSERTION_HEADER",
    "STATE_COOKIE",
    "AssertionSigner",
    "Gateway",
    "GatewayConfig",
    "InvalidAssertion",
    "KeyService",
    "SessionCache",
    "SigningKey",
    "SnapshotHolder",
    "UpstreamProxy",
    "verify_assertion",
]
