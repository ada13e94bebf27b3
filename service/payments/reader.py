"""Payment observations by (network, transaction), with a cache.

* One source read per transaction (``sources``): a batched JSON-RPC round trip.
* Cache: an observation that is final enough — mined with at least ``min_confirmations`` — is kept for
  ``settled_ttl`` seconds (a repeat check is a dict look-up); a pending or unknown transaction for ``pending_ttl``
  (short: it is expected to change); a failed read is never cached. ``fresh=True`` (re-verification) bypasses the
  cache and refreshes it: a reorg can only be seen by reading again.
* ``prefetch`` sends a read ahead without waiting for it (a ``PipelinedSource``: the JSON-RPC batch is written to
  its connection; no thread). Submission sends it before the proofs' signatures are checked, so the round trip
  overlaps that work; the ``observe`` that follows takes the answer from that connection instead of making its
  own read. At most ``max_inflight`` reads are pending; beyond that, for in-process sources (nothing to overlap),
  or when sending fails, ``prefetch`` does nothing and the check reads in line. A pending read nobody took within
  ``abandon_after`` seconds (the submission was refused before its check) is dropped.
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
from service.payments.sources import PendingRead, TxSource


class PaymentReader:
    def __init__(
        self,
        *,
        sources: Mapping[str, TxSource],
        min_confirmations: int = 1,
        settled_ttl: float = 3600.0,
        pending_ttl: float = 2.0,
        max_entries: int = 10_000,
        max_inflight: int = 16,
        abandon_after: float = 30.0,
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
        self.max_inflight = max_inflight
        self.abandon_after = abandon_after
        self._inflight: dict[tuple[str, str], tuple[float, PendingRead]] = {}  # key → (sent at, read)
        self.reads = 0  # source reads made (for tests and the benchmark)
        self.joined = 0  # observations answered by a read already in flight (prefetched)

    def networks(self) -> list[str]:
        return sorted(self.sources)

    def observe(self, *, network: str, transaction: str, fresh: bool = False) -> TxObservation:
        """What ``network`` says about ``transaction`` (a 0x hash; compared lower-case). A read sent ahead for it
        (``prefetch``) is taken, unless ``fresh``.

        Raises:
            CouldNotCheck(NETWORK_NOT_CONFIGURED): no node serves ``network``.
            ChainUnavailable(RPC_FAILED): the node could not be read.
        """
        source = self.sources.get(network)
        if source is None:
            raise CouldNotCheck(Reason.NETWORK_NOT_CONFIGURED, f"no RPC node is configured for {network}")
        key = (network, transaction.lower())
        if not fresh:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] > self._clock():
                    return hit[1]
                flight = self._inflight.pop(key, None)
                self.joined += flight is not None
            if flight is not None:
                return self._store(key, flight[1].finish(), read_at=flight[0])
        now = self._clock()
        return self._store(key, source.observe(network=network, transaction=key[1]), read_at=now)

    def prefetch(self, *, network: str, transaction: str) -> bool:
        """Send the read of ``transaction`` ahead (see the module docstring); True when a read is now pending.
        Never raises: a read that cannot be sent is left to ``observe``, which reports the failure."""
        source = self.sources.get(network)
        begin = getattr(source, "begin", None)  # a PipelinedSource (a runtime Protocol check costs µs per call)
        if begin is None:
            return False
        key = (network, transaction.lower())
        now = self._clock()
        with self._lock:
            stale = [k for k, (sent, _) in self._inflight.items() if sent + self.abandon_after <= now]
            dropped = [self._inflight.pop(k)[1] for k in stale]
            hit = self._cache.get(key)
            busy = (hit is not None and hit[0] > now) or key in self._inflight
            full = len(self._inflight) >= self.max_inflight
        for read in dropped:
            read.abandon()
        if busy or full:
            return False
        try:
            pending: PendingRead = begin(network=network, transaction=key[1])
        except CouldNotCheck:
            return False
        with self._lock:
            taken = key in self._inflight
            if not taken:
                self._inflight[key] = (now, pending)
        if taken:  # another request sent the same read meanwhile
            pending.abandon()
        return not taken

    def _store(self, key: tuple[str, str], observation: TxObservation, *, read_at: float) -> TxObservation:
        final = observation.mined and observation.confirmations >= self.min_confirmations
        ttl = self.settled_ttl if final else self.pending_ttl
        with self._lock:
            self.reads += 1
            self._cache[key] = (read_at + ttl, observation)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return observation

    def close(self) -> None:
        """Drop the pending reads."""
        with self._lock:
            pending, self._inflight = list(self._inflight.values()), {}
        for _, read in pending:
            read.abandon()

    def forget(self, *, network: str, transaction: str) -> None:
        with self._lock:
            self._cache.pop((network, transaction.lower()), None)
