"""Policy service errors."""

from __future__ import annotations

from nevertrust.errors import InvalidInput, NotFound

__all__ = ["InvalidCases", "InvalidRequestSpec", "UnknownPolicyVersion"]


class UnknownPolicyVersion(NotFound):
    code = "unknown-policy-version"


class InvalidRequestSpec(InvalidInput):
    code = "invalid-request"


class InvalidCases(InvalidInput):
    """A policy test file is wrong; the message carries file:line:column."""

    code = "invalid-test-file"
