"""The one place NeverTrust errors become HTTP responses for the API."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from nevertrust.errors import NeverTrustError

__all__ = ["install_error_handlers"]


def _request_id(request: Request) -> str:
    return request.headers.get("x-request-id", "")[:64] or os.urandom(8).hex()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NeverTrustError)
    async def _ours(request: Request, exc: NeverTrustError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.message, "request_id": _request_id(request)},
            status_code=exc.http_status,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {
                "error": "invalid-input",
                "detail": f"{where}: {first.get('msg')}",
                "request_id": _request_id(request),
            },
            status_code=422,
        )
