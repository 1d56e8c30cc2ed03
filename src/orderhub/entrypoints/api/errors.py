"""The one place that maps errors to HTTP: every error becomes application/problem+json
with a stable ``code``, a human ``detail`` and, for bad input, the field path at fault."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orderhub.domain import errors as domain
from orderhub.service_layer import errors as service

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (service.InvalidApiKey, 401),
    (service.PermissionDenied, 403),
    (service.OperatorLocked, 403),
    (service.NotFound, 404),
    (service.Conflict, 409),
    (service.InvalidInput, 422),
    (domain.SignatureInvalid, 401),
    (domain.UnreadableMessage, 400),
    (domain.InvalidTransition, 409),
    (domain.InvalidShipmentTransition, 409),
    (domain.ShipmentClosed, 409),
    (domain.InvalidCaseTransition, 409),
    (domain.ActionNotAllowed, 409),
    (domain.VersionMismatch, 409),
    (domain.EventKeyReused, 409),
    (domain.DomainError, 422),
)

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Payload too large", 415: "Unsupported media type", 422: "Invalid input",
          500: "Internal server error", 503: "Service unavailable"}


def problem(status: int, code: str, detail: str, *, request: Request | None = None,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    """Build a problem+json response (RFC 9457) with OrderHub's stable ``code``."""
    body: dict[str, Any] = {"type": f"https://orderhub.dev/problems/{code}", "title": TITLES.get(status, "Error"),
                            "status": status, "code": code, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
        trace_id = getattr(request.state, "trace_id", None)
        if trace_id:
            body["trace_id"] = trace_id
    if errors:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Turn a Pydantic location like ("body", "lines", 0, "sku") into "lines[0].sku"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _status_for(exc: Exception) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def _domain_extra(exc: domain.DomainError) -> dict[str, Any]:
    """What a domain error knows beyond its message (what a scan expected instead…)."""
    if isinstance(exc, domain.ScanRejected):
        return {"expected": exc.expected}
    if isinstance(exc, domain.ShipmentClosed):
        return {"shipment_status": exc.status}
    if isinstance(exc, domain.RefundExceedsRemaining):
        return {"remaining": exc.remaining}
    if isinstance(exc, domain.ActionNotAllowed):
        return {"allowed": list(exc.allowed)}
    return {}


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            where: dict[str, Any] = next((dict(e) for e in raw if e.get("type") == "json_invalid"), {})
            ctx = where.get("ctx") or {}
            return problem(400, "malformed_json",
                           f"the request body is not valid JSON ({ctx.get('error', 'parse error')}); "
                           "send a JSON object with Content-Type: application/json", request=request)
        errors = [{"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid"),
                   "type": e.get("type")} for e in raw]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field'] or 'request'}: {first['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return problem(422, "validation_error", detail, request=request, errors=errors, field=first["field"])

    async def on_known(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, domain.DomainError | service.ServiceError)
        status = _status_for(exc)
        field = exc.field
        errors = [{"field": field, "message": exc.message, "type": exc.code}] if field else None
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        extra = exc.extra if isinstance(exc, service.ServiceError) else _domain_extra(exc)
        return problem(status, exc.code, exc.message, request=request, errors=errors, headers=headers,
                       field=field, **extra)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "route_not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        return problem(exc.status_code, code, str(exc.detail), request=request,
                       headers=dict(exc.headers) if exc.headers else None)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged with the trace id",
                       request=request)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(domain.DomainError, on_known)
    app.add_exception_handler(service.ServiceError, on_known)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
