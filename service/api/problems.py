"""RFC 9457 problem+json: every rejection has a stable ``code`` and a status that says whose fault it is."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.domain import Reason
from service.errors import ChainRejected, CheckFailed, CouldNotCheck, OmaTrustError

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 30

_HTTP_CODES = {
    400: "malformed-body",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    429: "rate-limited",
}

# Reasons that are a conflict with stored state rather than a bad request.
_CONFLICT = {Reason.RECEIPT_REPLAYED}


def problem(
    *, status: int, code: str, title: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": f"urn:omatrust:problem:{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(exc: OmaTrustError) -> int:
    if isinstance(exc, CouldNotCheck):
        return 503
    if exc.reason in _CONFLICT:
        return 409
    return 422


def _title(exc: OmaTrustError) -> str:
    if isinstance(exc, CouldNotCheck):
        return "A check could not run; try again later"
    if isinstance(exc, ChainRejected):
        return "The attestation request was refused"
    if isinstance(exc, CheckFailed):
        return "The review or one of its proofs was rejected"
    return "Request rejected"


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    @app.exception_handler(OmaTrustError)
    async def _domain_error(_request: Request, exc: OmaTrustError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
        return problem(status=status, code=exc.reason.value, title=_title(exc), detail=exc.detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return problem(status=422, code="request-invalid", title="The request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http-{exc.status_code}")
        headers = dict(exc.headers) if exc.headers else None
        return problem(status=exc.status_code, code=code, title=str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        return problem(status=500, code="internal-error", title="Internal error")
