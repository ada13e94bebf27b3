"""Caps on outbound look-ups in flight (did:web fetches, DNS queries, JSON-RPC calls): per host and overall.

A peer that accepts connections and stalls holds a look-up for its whole deadline; without a cap, a few hundred
requests naming such hosts tie up every worker. Past a cap, new look-ups wait at most ``wait`` seconds for a
slot and then fail with ``LookupSaturated`` (a ``CouldNotCheck``: the API answers 503 + ``Retry-After``,
``lookup-saturated``; batch tools record ``indeterminate``) instead of queueing without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.domain import Reason
from service.errors import LookupSaturated


class LookupLimiter:
    """At most ``per_host`` look-ups in flight for one host and ``total`` overall (thread-safe)."""

    def __init__(
        self, *, total: int, per_host: int, wait: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if total < 1 or per_host < 1 or wait < 0:
            raise ValueError("lookup caps must be >= 1 and the wait >= 0")
        self.total = total
        self.per_host = per_host
        self.wait = wait
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._by_host: dict[str, int] = {}

    def in_flight(self, host: str | None = None) -> int:
        with self._cond:
            return self._in_flight if host is None else self._by_host.get(host, 0)

    @contextmanager
    def slot(self, *, host: str, what: str = "look-up") -> Iterator[None]:
        """Hold one slot for ``host`` while the block runs.

        Raises:
            LookupSaturated: LOOKUP_SATURATED when no slot frees within ``wait`` seconds.
        """
        host = host.lower()
        deadline = self._clock() + self.wait
        with self._cond:
            while self._in_flight >= self.total or self._by_host.get(host, 0) >= self.per_host:
                left = deadline - self._clock()
                if left <= 0:
                    scope = "overall" if self._in_flight >= self.total else f"for {host}"
                    raise LookupSaturated(Reason.LOOKUP_SATURATED, f"too many {what}s in flight {scope}; retry")
                self._cond.wait(left)
            self._in_flight += 1
            self._by_host[host] = self._by_host.get(host, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                left_for_host = self._by_host[host] - 1
                if left_for_host:
                    self._by_host[host] = left_for_host
                else:
                    del self._by_host[host]
                self._cond.notify_all()
