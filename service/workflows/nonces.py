"""The attester's EAS nonce without a chain round-trip per submission, when the service can know it.

What the service knows: its own outbox (requests of the attester it accepted — pending, submitted or confirmed —
consume nonces in order, so the next one is one past the highest) and recent chain reads (``NonceBook``, a
bounded per-process cache with a TTL). When the claimed nonce is exactly the next one by that knowledge, no RPC is
made; on any mismatch the chain is read again and that value is used (and cached). So a stale value never turns a
right request into a refusal, and a wrong nonce is refused with a clean 422 ``delegation-nonce`` as before.

The one thing this cannot see is the attester spending a nonce *elsewhere* (another relayer) since the last read;
such a request would also have raced the chain without the cache. It is caught before any gas is spent: the
publisher re-checks every request against the chain nonce and marks it ``failed`` (``delegation-nonce``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from service.chain.addresses import checksum_cached
from service.store.engine import session_scope
from service.store.outbox import next_own_nonce
from service.ttl_cache import TtlLru

if TYPE_CHECKING:  # runtime.py holds a NonceBook
    from service.workflows.runtime import Runtime


class NonceBook(TtlLru[str, int]):
    """attester (lower-case) → EAS nonce last read from the chain, for ``ttl`` seconds; at most ``size`` entries
    (least recently used dropped). Thread-safe."""

    def __init__(self, *, ttl: float = 30.0, size: int = 100_000, clock: Callable[[], float] = time.monotonic):
        super().__init__(ttl=ttl, size=size, clock=clock)


class SeenHashes:
    """A bounded, thread-safe set of strings, oldest dropped first: the evidence snapshots (content hashes) this
    process knows are committed in its database, so a submission citing the same DID document as the last one
    skips re-inserting it (snapshots are never deleted; a forgotten hash only costs an INSERT … DO NOTHING)."""

    def __init__(self, *, size: int = 10_000) -> None:
        self.size = size
        self._entries: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, value: object) -> bool:
        with self._lock:
            return value in self._entries

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for v in values:
                self._entries[v] = None
                self._entries.move_to_end(v)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def chain_nonce_for(*, rt: Runtime, attester: str, claimed: int) -> int:
    """The attester's chain nonce to check ``claimed`` against (``attester`` lower-case): ``claimed`` itself when
    the outbox or a recent chain read says it is the next one, else a fresh ``getNonce``.

    Raises:
        ChainUnavailable: the chain had to be read and could not be.
    """
    with session_scope(rt.engine) as session:
        own = next_own_nonce(session, attester=attester)
    return chain_nonce_given(rt=rt, attester=attester, claimed=claimed, own=own)


def chain_nonce_given(*, rt: Runtime, attester: str, claimed: int, own: int | None) -> int:
    """:func:`chain_nonce_for` with the outbox's knowledge already read (``own``: ``next_own_nonce`` of the
    attester, read by the caller in its own session — one database round-trip fewer per submission).

    Raises:
        ChainUnavailable: the chain had to be read and could not be.
    """
    cached = rt.nonces.get(attester)
    if (own is not None or cached is not None) and claimed == max(own or 0, cached or 0):
        return claimed
    fresh = rt.eas.get_nonce(attester=checksum_cached(attester))
    rt.nonces.put(attester, fresh)
    return fresh
