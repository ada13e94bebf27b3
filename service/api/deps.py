"""FastAPI dependency aliases.

The providers are ``async def`` on purpose: they only read ``app.state``, and FastAPI runs a plain ``def``
dependency in the thread pool — one thread hand-off per dependency per request before the route itself is handed
to a thread. (POST /v1/reviews reads ``app.state`` itself: even resolving async dependencies costs there.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.limits import RateLimiter
from service.api.metrics import Metrics
from service.workflows.runtime import Runtime


async def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def _limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter  # type: ignore[no-any-return]


async def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
