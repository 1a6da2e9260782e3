"""The one table from exception classes to HTTP status and OpenAI's error envelope."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisperx_api import errors as e

log = logging.getLogger(__name__)

# Most specific class first: the first isinstance match wins.
ERROR_TABLE: tuple[tuple[type[e.WhisperXApiError], int, str], ...] = (
    (e.InvalidRequest, 400, "invalid_request_error"),
    (e.PayloadTooLarge, 413, "invalid_request_error"),
    (e.AuthenticationFailed, 401, "authentication_error"),
    (e.PermissionDenied, 403, "permission_error"),
    (e.NotFound, 404, "not_found_error"),
    (e.Conflict, 409, "conflict_error"),
    (e.JobCancelled, 409, "conflict_error"),
    (e.Overloaded, 503, "server_overloaded"),
    (e.SyncTimeout, 504, "timeout_error"),
    (e.StorageFull, 507, "server_error"),
    (e.Unhealthy, 503, "server_error"),
    (e.WhisperXApiError, 500, "server_error"),
)

_GENERIC_500 = "The server had an error while processing your request."


def envelope(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_status(exc: e.WhisperXApiError) -> tuple[int, dict[str, object]]:
    """The HTTP status and the body (the envelope, plus a job link on a sync timeout)."""
    status, type_ = next((s, t) for cls, s, t in ERROR_TABLE if isinstance(exc, cls))
    body: dict[str, object] = {**envelope(exc.message, type_, exc.param, exc.code)}
    if isinstance(exc, e.SyncTimeout):
        body["job_id"] = exc.job_id
        body["status_url"] = f"/transcription/{exc.job_id}"
    return status, body


def error_response(exc: e.WhisperXApiError) -> JSONResponse:
    """Render one of our errors with its status, envelope and headers."""
    status, body = error_status(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, e.Overloaded):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, on every endpoint, leaves in the envelope."""
    app.add_exception_handler(e.WhisperXApiError, _on_ours)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_bug)


async def _on_ours(_: Request, exc: e.WhisperXApiError) -> JSONResponse:
    return error_response(exc)


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    message = f"{'.'.join(loc) or 'request'}: {first.get('msg', 'invalid value')}"
    return error_response(e.InvalidValue(message, param=loc[0] if loc else None))


async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return JSONResponse(
        envelope(str(exc.detail), type_), exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(envelope(_GENERIC_500, "server_error"), status_code=500)
