"""Payment observations by (network, transaction), with a cache.

* One source read per transaction (``sources``): a batched JSON-RPC round trip.
* Cache: an observation that is final enough — mined with at least ``min_confirmations`` — is kept for
  ``settled_ttl`` seconds (a repeat check is a dict look-up); a pending or unknown transaction for ``pending_ttl``
  (short: it is expected to change); a failed read is never cached. ``fresh=True`` (re-verification) bypasses the
  cache and refreshes it: a reorg can only be seen by reading again.
* A network without a source raises ``CouldNotCheck(NETWORK_NOT_CONFIGURED)``: the check is indeterminate, never
  negative.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from service.domain import Reason, TxObservation
from service.errors import CouldNotCheck
from service.payments.sources import TxSource


class PaymentReader:
    def __init__(
        self,
        *,
        sources: Mapping[str, TxSource],
        min_confirmations: int = 1,
        settled_ttl: float = 3600.0,
        pending_ttl: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = dict(sources)
        self.min_confirmations = max(1, min_confirmations)
        self.settled_ttl = settled_ttl
        self.pending_ttl = pending_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, TxObservation]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # source reads made (for tests and the benchmark)

    def networks(self) -> list[str]:
        return sorted(self.sources)

    def observe(self, *, network: str, transaction: str, fresh: bool = False) -> TxObservation:
        """What ``network`` says about ``transaction`` (a 0x hash; compared lower-case).

        Raises:
            CouldNotCheck(NETWORK_NOT_CONFIGURED): no node serves ``network``.
            ChainUnavailable(RPC_FAILED): the node could not be read.
        """
        source = self.sources.get(network)
        if source is None:
            raise CouldNotCheck(Reason.NETWORK_NOT_CONFIGURED, f"no RPC node is configured for {network}")
        key = (network, transaction.lower())
        now = self._clock()
        if not fresh:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] > now:
                    return hit[1]
        observation = source.observe(network=network, transaction=key[1])
        self.reads += 1
        final = observation.mined and observation.confirmations >= self.min_confirmations
        ttl = self.settled_ttl if final else self.pending_ttl
        with self._lock:
            self._cache[key] = (now + ttl, observation)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return observation

    def forget(self, *, network: str, transaction: str) -> None:
        with self._lock:
            self._cache.pop((network, transaction.lower()), None)
