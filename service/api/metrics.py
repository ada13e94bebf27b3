"""Prometheus metrics in a registry owned by the app (several apps in one process must not collide), and the
middleware that times requests."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "omatrust_http_request_seconds",
            "HTTP request latency by route template and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.submissions = Counter(
            "omatrust_review_submissions_total",
            "Review submissions by result (accepted or the rejection code).",
            ["result"],
            registry=self.registry,
        )
        self.outbox = Gauge("omatrust_outbox_rows", "Publish outbox rows by state.", ["state"], registry=self.registry)
        self.submit_groups = Gauge(  # set from the runtime's GroupCommit when scraped
            "omatrust_submit_groups",
            "Group commit of submissions since start: groups written, the submissions they held, the largest group.",
            ["what"],
            registry=self.registry,
        )


class RequestTiming:
    """ASGI middleware: observe each HTTP request's latency (to its response start) in ``omatrust_http_request_seconds``
    by route template, method and status class.

    Pure ASGI on purpose: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) runs the app in a task
    group and streams the response through memory channels, which cost more CPU per request than the route itself
    on the submission path. ``metrics`` is read per request (the app's ``state.metrics``)."""

    def __init__(self, app: ASGIApp, *, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the router put the matched route into this same scope dict
                template = getattr(scope.get("route"), "path", "unmatched")
                self.metrics().requests.labels(template, scope["method"], f"{message['status'] // 100}xx").observe(
                    time.perf_counter() - start
                )
            await send(message)

        await self.app(scope, receive, timed_send)
