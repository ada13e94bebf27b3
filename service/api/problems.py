"""RFC 9457 problem+json: every rejection has a stable ``code`` and a status that says whose fault it is."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.domain import Reason
from service.errors import ChainRejected, CheckFailed, CouldNotCheck, OmaTrustError

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 30
CORRELATION_HEADER = "X-Correlation-Id"
log = logging.getLogger("omatrust.api")

# Anything URL-shaped (an RPC URL may carry an API key in its path or credentials in its authority).
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*")
_CREDENTIALS_RE = re.compile(r"[^\s/@'\"]+:[^\s/@'\"]*@")

_HTTP_CODES = {
    400: "malformed-body",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    429: "rate-limited",
}

# Reasons that are a conflict with stored state rather than a bad request.
_CONFLICT = {Reason.RECEIPT_REPLAYED}


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def problem(
    *, status: int, code: str, title: str, detail: str = "", headers: dict[str, str] | None = None,
    correlation_id: str | None = None, **extra: Any,
) -> JSONResponse:  # fmt: skip
    """A problem+json response. ``instance`` (and the ``X-Correlation-Id`` header) name the server log entries
    of this request; ``detail`` is redacted (``public_text``) whoever built it."""
    correlation_id = correlation_id or new_correlation_id()
    body: dict[str, Any] = {"type": f"urn:omatrust:problem:{code}", "title": title, "status": status, "code": code,
                            "instance": f"urn:omatrust:request:{correlation_id}"}  # fmt: skip
    if detail:
        body["detail"] = public_text(detail)
    body.update(extra)
    headers = {**(headers or {}), CORRELATION_HEADER: correlation_id}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def public_text(text: str) -> str:
    """``text`` as a client may see it: URLs become ``<url>``, ``user:secret@`` authorities are dropped."""
    return _CREDENTIALS_RE.sub("", _URL_RE.sub("<url>", text))


def public_detail(exc: BaseException) -> str:
    """The detail of a domain error without any library text: a detail built as ``f"...: {exc}"`` from a caught
    library exception has that exception's text (found on the ``__cause__``/``__context__`` chain) cut out."""
    detail = str(getattr(exc, "detail", "") or "")
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for text in (repr(cause), str(cause)):
            if len(text) >= 4 and text in detail:
                detail = detail.replace(text, "").rstrip(" :")
        cause = cause.__cause__ or cause.__context__
    return public_text(detail)


def retry_after_for(exc: OmaTrustError) -> int:
    """Seconds a client should wait: a saturated cap frees within a fetch deadline, a failed look-up may take longer."""
    return 1 if exc.reason in (Reason.LOOKUP_SATURATED, Reason.OVERLOADED) else RETRY_AFTER_SECONDS


# Refusals decided by this service's own configuration (the SSRF policy for did:web hosts): retrying cannot help,
# so 422 (not 503), with a hint naming the setting that decides.
CONFIG_REFUSALS: dict[Reason, str] = {
    Reason.FETCH_ADDRESS_REFUSED: "OMATRUST_DID_WEB_INSECURE_HOSTS",
    Reason.FETCH_SCHEME_REFUSED: "OMATRUST_DID_WEB_INSECURE_HOSTS",
}


def config_hint(reason: Reason) -> str | None:
    setting = CONFIG_REFUSALS.get(reason)
    if setting is None:
        return None
    return (
        f"refused by this service's configuration, not a passing failure: the did:web host is on a private/loopback "
        f"address or served over http; an operator may allow it for development with {setting}=host:port"
    )


def status_for(exc: OmaTrustError) -> int:
    if exc.reason in CONFIG_REFUSALS:
        return 422
    if isinstance(exc, CouldNotCheck):
        return 503
    if exc.reason in _CONFLICT:
        return 409
    return 422


def _title(exc: OmaTrustError) -> str:
    if exc.reason in CONFIG_REFUSALS:
        return "Refused by this service's configuration"
    if isinstance(exc, CouldNotCheck):
        return "A check could not run; try again later"
    if isinstance(exc, ChainRejected):
        return "The attestation request was refused"
    if isinstance(exc, CheckFailed):
        return "The review or one of its proofs was rejected"
    return "Request rejected"


DATABASE_UNAVAILABLE = "database-unavailable"


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    @app.exception_handler(OmaTrustError)
    async def _domain_error(request: Request, exc: OmaTrustError) -> JSONResponse:
        status = status_for(exc)
        correlation_id = new_correlation_id()
        # The full story (library texts, URLs) stays in the log, under the id the client is given.
        log.log(logging.WARNING if status >= 500 else logging.INFO, "request %s %s %s → %s %s: %s (cause: %r)",
                correlation_id, request.method, request.url.path, status, exc.reason.value, exc.detail,
                exc.__cause__ or exc.__context__)  # fmt: skip
        headers = {"Retry-After": str(retry_after_for(exc))} if status == 503 else None
        hint = config_hint(exc.reason)
        return problem(status=status, code=exc.reason.value, title=_title(exc), detail=public_detail(exc),
                       headers=headers, correlation_id=correlation_id,
                       **({"hint": hint} if hint else {}))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):  # not JSON at all: a malformed body, as OpenAPI says
            return problem(status=400, code="malformed-body", title="The request body is not valid JSON",
                           errors=errors)  # fmt: skip
        return problem(status=422, code="request-invalid", title="The request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http-{exc.status_code}")
        headers = dict(exc.headers) if exc.headers else None
        return problem(status=exc.status_code, code=code, title=str(exc.detail), headers=headers)

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database could not be reached or dropped the connection (a restart: SQLAlchemy has already replaced
        # the pool's older connections), the pool is exhausted, or the server gave up on the statement (a deadlock,
        # a timeout): the request failed as a whole and sending it again can succeed — submissions are idempotent.
        correlation_id = new_correlation_id()
        log.warning("request %s %s %s: database unavailable: %s", correlation_id, request.method, request.url.path,
                    exc)  # fmt: skip
        return problem(status=503, code=DATABASE_UNAVAILABLE, title="The database is unavailable",
                       headers={"Retry-After": "1"}, correlation_id=correlation_id)  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        correlation_id = new_correlation_id()
        log.error("request %s %s %s failed", correlation_id, request.method, request.url.path, exc_info=exc)
        return problem(status=500, code="internal-error", title="Internal error", correlation_id=correlation_id)
