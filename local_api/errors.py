"""One error shape for every 4xx/5xx: {"detail": sentence, "code": machine code[, "errors": [...]]}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from local_api.ports import SystemConflict

log = logging.getLogger(__name__)

_CODES = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "invalid",
    415: "invalid",
    422: "invalid",
    429: "locked_out",
    500: "internal",
    502: "upstream",
    503: "unavailable",
    504: "upstream",
}
_NO_BODY = {204, 304}


def code_for(status: int) -> str:
    """The machine code for an HTTP status when nothing more specific applies."""
    return _CODES.get(status, "invalid" if status < 500 else "internal")


class ApiError(Exception):
    """Raised by an endpoint to answer with an error; turned into the common shape by the handlers."""

    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or code_for(status)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem(
    status: int,
    detail: str,
    code: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An error response in the common shape (no-store: errors are about this request only)."""
    body = {"detail": detail, "code": code or code_for(status), **extra}
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store", **(headers or {})})


def _loc(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts)


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as [{"loc": "body.username", "msg": ...}]; never the input (it may be a password)."""
    return [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in errors]


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    first = f"{errors[0]['loc']}: {errors[0]['msg']}" if errors else "the request is not valid"
    return problem(422, f"invalid request ({first})", "invalid", errors=errors)


async def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in _NO_BODY:
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such resource"
    elif exc.status_code == 405:
        detail = "this method is not allowed here"
    return problem(exc.status_code, detail, headers=exc.headers)


async def _api(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem(exc.status, exc.detail, exc.code, headers=exc.headers, **exc.extra)


async def _conflict(_request: Request, exc: Exception) -> Response:
    return problem(409, str(exc), "conflict")


async def _internal(request: Request, exc: Exception) -> Response:
    # Logged with the traceback; the client learns nothing about the internals.
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error; see the siteedge log", "internal")


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the common shape."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    # The system service's "impossible here" (no config file known, ...) is a 409 wherever it is raised.
    app.add_exception_handler(SystemConflict, _conflict)
    app.add_exception_handler(Exception, _internal)
