"""Enforcement point: identity-aware reverse proxy and signed identity assertions.

The proxy and its HTTP client load on first use (PEP 562), so that commands which only
need the key service or the assertion verifier (the CLI, upstream helpers) start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from nevertrust.gateway.assertion import (
    ASSERTION_HEADER,
    AssertionSigner,
    InvalidAssertion,
    verify_assertion,
)
from nevertrust.gateway.keys import KeyService, SigningKey

if TYPE_CHECKING:
    from nevertrust.gateway.enforcer import (
        APP_SESSION_COOKIE,
        STATE_COOKIE,
        Gateway,
        GatewayConfig,
    )
    from nevertrust.gateway.proxy import UpstreamProxy
    from nevertrust.gateway.state import ActivityLog, SessionCache, SnapshotHolder

__all__ = [
    "APP_SESSION_COOKIE",
    "ASSERTION_HEADER",
    "STATE_COOKIE",
    "AssertionSigner",
    "Gateway",
    "GatewayConfig",
    "InvalidAssertion",
    "KeyService",
    "ActivityLog",
    "SessionCache",
    "SigningKey",
    "SnapshotHolder",
    "UpstreamProxy",
    "verify_assertion",
]

_LAZY = {
    "APP_SESSION_COOKIE": "nevertrust.gateway.enforcer",
    "STATE_COOKIE": "nevertrust.gateway.enforcer",
    "Gateway": "nevertrust.gateway.enforcer",
    "GatewayConfig": "nevertrust.gateway.enforcer",
    "UpstreamProxy": "nevertrust.gateway.proxy",
    "ActivityLog": "nevertrust.gateway.state",
    "SessionCache": "nevertrust.gateway.state",
    "SnapshotHolder": "nevertrust.gateway.state",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nevertrust.gateway' has no attribute {name!r}")
    return getattr(import_module(module), name)
