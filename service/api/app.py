"""The FastAPI app factory. Everything stateful is built here (or handed in by tests), never at import time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from service import __version__
from service.api import (
    openapi,
    problems,
    routes_attestations,
    routes_badges,
    routes_chain_rpc,
    routes_erc8004,
    routes_ops,
    routes_pages,
    routes_reputation,
    routes_resources,
    routes_reviews,
    routes_witness,
)
from service.api.limits import BodySizeLimit, EdgeGuard, RateLimiter, VerificationBulkhead
from service.api.metrics import Metrics, RequestTiming
from service.api.schemas import exact_integer_bounds, no_nul_in_parameters
from service.api.shared_limits import SharedRateLimiter
from service.config import Settings
from service.identity.cache import TtlCache
from service.identity.profile import ServiceProfile
from service.wiring import Wired, build_rate_limit_strategy, load_settings, wire

REPUTATION_CACHE_SECONDS = 2.0
# Requests that verify proofs (look-ups to did:web hosts, DNS, the chain): run behind the verification bulkhead.
VERIFICATION_ROUTES = (("POST", "/v1/reviews"), ("POST", "/v1/proofs/verify"))


def create_app(settings: Settings | None = None, *, wired: Wired | None = None) -> FastAPI:
    """Build the app. Without ``wired`` the runtime (DB, chain, resolvers, publisher) is built from ``settings``
    at start-up and torn down at shutdown; tests may pass a pre-built one."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = wired is None
        w = wire(settings) if owned else wired
        assert w is not None
        app.state.runtime = w.runtime
        app.state.wired = w
        # Sync endpoints run on this pool; verification can hold at most verify_max_concurrent of its threads.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
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
    # Shared by every API process through Redis when OMATRUST_REDIS_URL is set; per process otherwise.
    shared = build_rate_limit_strategy(settings)
    app.state.limiter = (
        SharedRateLimiter(strategy=shared, per_minute=settings.rate_limit_per_minute) if shared is not None
        else RateLimiter(per_minute=settings.rate_limit_per_minute)
    )  # fmt: skip
    app.state.metrics = Metrics()
    # Reputation responses per subject, for a short time: a score moves by ~3e-6 a minute through decay alone, and
    # this process drops a subject's entry when it accepts a review for it. Other processes' writes (API replicas,
    # sync, reverify) show after at most the TTL.
    app.state.reputation_cache = TtlCache[str, bytes](ttl=REPUTATION_CACHE_SECONDS, clock=time.monotonic)
    app.state.settings = settings
    # Service display profiles (name/URL/logo from did.json), failures included, so a dead host costs one fetch.
    app.state.service_profiles = TtlCache[str, ServiceProfile](ttl=settings.did_cache_ttl_seconds, clock=time.monotonic)
    problems.install(app)
    openapi.install(app)
    generate_openapi = app.openapi

    def exact_openapi() -> dict[str, Any]:
        spec = generate_openapi()
        exact_integer_bounds(spec)  # idempotent; the document is cached by the generator
        no_nul_in_parameters(spec)
        return spec

    app.openapi = exact_openapi  # type: ignore[method-assign]
    app.include_router(routes_reviews.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_reputation.router)
    app.include_router(routes_pages.router)
    app.include_router(routes_badges.router)
    app.include_router(routes_attestations.router)
    app.include_router(routes_chain_rpc.router)
    app.include_router(routes_resources.router)
    app.include_router(routes_witness.router)
    app.include_router(routes_erc8004.router)

    app.add_middleware(RequestTiming, metrics=lambda: app.state.metrics)
    # Innermost first: the bulkhead admits a verification only once its (capped) body is in.
    app.add_middleware(VerificationBulkhead, routes=VERIFICATION_ROUTES, max_concurrent=settings.verify_max_concurrent,
                       max_queue=settings.verify_max_queue)  # fmt: skip
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, max_values=settings.max_json_values)
    app.add_middleware(EdgeGuard)
    return app
