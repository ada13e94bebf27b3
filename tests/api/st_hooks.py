"""schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.api.st_hooks``): checks specific to this API, run with all others."""

from __future__ import annotations

import json

import schemathesis

# Codes the request layer itself gives (shape, types, bounds, sizes): a schema-valid request must never get them.
_REQUEST_LAYER = {"request-invalid", "malformed-body", "json-too-deep", "json-too-many-values", "body-too-large",
                  "value-not-storable"}  # fmt: skip
_RETRYABLE = {"fetch-failed", "fetch-timeout", "fetch-http-status", "fetch-too-large", "fetch-redirect-refused",
              "dns-failed", "rpc-failed", "lookup-saturated", "overloaded", "lookup-skipped", "not-ready"}  # fmt: skip


def _problem(response: schemathesis.Response) -> dict[str, object]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@schemathesis.check
def schema_admits_only_valid_requests(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """The OpenAPI schema is exactly what the server's request validation accepts: a request generated from the
    schema is never refused by that validation (only by the domain rules, with their own reason codes)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 413, 422):
        return
    code = _problem(response).get("code")
    if code in _REQUEST_LAYER:
        raise AssertionError(f"a schema-valid request was refused by request validation: {response.status_code} "
                             f"{code}: {response.content[:500]!r}")  # fmt: skip


@schemathesis.check
def unavailable_means_retry(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """A 503 names a retryable look-up failure and says when to retry."""
    if response.status_code != 503:
        return
    code = _problem(response).get("code")
    assert code in _RETRYABLE, f"503 with code {code!r}"
    assert response.headers.get("retry-after"), "503 without Retry-After"
