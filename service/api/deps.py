"""FastAPI dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.limits import RateLimiter
from service.api.metrics import Metrics
from service.workflows.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter  # type: ignore[no-any-return]


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
