"""Prometheus metrics in a registry owned by the app (several apps in one process must not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
