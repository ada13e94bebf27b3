"""The FastAPI app factory. Everything stateful is built here (or handed in by tests), never at import time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from service import __version__
from service.api import openapi, problems, routes_ops, routes_pages, routes_reputation, routes_reviews
from service.api.limits import BodySizeLimit, RateLimiter
from service.api.metrics import Metrics
from service.config import Settings
from service.identity.cache import TtlCache
from service.wiring import Wired, wire

REPUTATION_CACHE_SECONDS = 2.0


def create_app(settings: Settings | None = None, *, wired: Wired | None = None) -> FastAPI:
    """Build the app. Without ``wired`` the runtime (DB, chain, resolvers, publisher) is built from ``settings``
    at start-up and torn down at shutdown; tests may pass a pre-built one."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = wired is None
        w = wire(settings) if owned else wired
        assert w is not None
        app.state.runtime = w.runtime
        app.state.wired = w
        w.start()
        try:
            yield
        finally:
            if owned:
                w.close()

    app = FastAPI(
        title="OMATrust x402 reputation service",
        version=__version__,
        summary="Verified-purchase User Reviews for x402 services, published as EAS attestations.",
        lifespan=lifespan,
    )
    app.state.limiter = RateLimiter(per_minute=settings.rate_limit_per_minute)
    app.state.metrics = Metrics()
    # Reputation responses per subject, for a short time: a score moves by ~3e-6 a minute through decay alone, and
    # this process drops a subject's entry when it accepts a review for it. Other processes' writes (API replicas,
    # sync, reverify) show after at most the TTL.
    app.state.reputation_cache = TtlCache[str, bytes](ttl=REPUTATION_CACHE_SECONDS, clock=time.monotonic)
    problems.install(app)
    openapi.install(app)
    app.include_router(routes_reviews.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_reputation.router)
    app.include_router(routes_pages.router)

    @app.middleware("http")
    async def _timing(request: Request, call_next: RequestResponseEndpoint) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        app.state.metrics.requests.labels(template, request.method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - start
        )
        return response

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
