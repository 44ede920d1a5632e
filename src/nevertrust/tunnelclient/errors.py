"""Errors of the tunnel client; the CLI prints them as ``error[code]: message``."""

from __future__ import annotations

from nevertrust.errors import BackendUnavailable, Unauthenticated

__all__ = ["GatewayUnreachable", "SignInFailed"]


class SignInFailed(Unauthenticated):
    code = "sign-in-failed"


class GatewayUnreachable(BackendUnavailable):
    code = "gateway-unreachable"
