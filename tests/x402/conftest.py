"""The payment chain and the API on it, one per test module (``tests.x402.support``)."""

from __future__ import annotations

from tests.x402.support import chain, service  # noqa: F401
