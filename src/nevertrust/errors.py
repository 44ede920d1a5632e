"""The one error root. Every package subclasses it and sets only class attributes.

NeverTrustError
 +-- InvalidInput (400)             bad input from outside: field, value, place
 |    +-- apps.ConfigFileError      declarative file error with file, line, column
 +-- NotFound (404)
 +-- AlreadyExists (409)
 +-- Unauthenticated (401)
 |    +-- identity.InvalidCredentials
 +-- Forbidden (403)
 |    +-- web.CsrfFailed
 +-- ConfigError (exit 78)          a setting is wrong; names key and value
 +-- BackendUnavailable (503)       database, Redis or the running server is unreachable

Codes are stable kebab-case strings; they are mapped to HTTP in ``web/errors.py`` and to
exit codes in ``cli/errors.py`` and nowhere else. Messages say expected versus got and
never contain a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "ConfigError",
    "Forbidden",
    "InvalidInput",
    "NeverTrustError",
    "NotFound",
    "Unauthenticated",
]


class NeverTrustError(Exception):
    """Root of every error NeverTrust raises on purpose."""

    code: ClassVar[str] = "internal-error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(NeverTrustError):
    code = "invalid-input"
    http_status = 400
    exit_code = 2


class NotFound(NeverTrustError):
    code = "not-found"
    http_status = 404
    exit_code = 3


class AlreadyExists(NeverTrustError):
    code = "already-exists"
    http_status = 409
    exit_code = 4


class Unauthenticated(NeverTrustError):
    code = "unauthenticated"
    http_status = 401
    exit_code = 5


class Forbidden(NeverTrustError):
    code = "forbidden"
    http_status = 403
    exit_code = 6


class ConfigError(NeverTrustError):
    code = "config-error"
    http_status = 500
    exit_code = 78


class BackendUnavailable(NeverTrustError):
    code = "backend-unavailable"
    http_status = 503
    exit_code = 69
