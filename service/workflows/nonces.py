"""The attester's EAS nonce without a chain round-trip per submission, when the service can know it.

What the service knows: its own outbox (requests of the attester it accepted — pending, submitted or confirmed —
consume nonces in order, so the next one is one past the highest) and recent chain reads (``NonceBook``, a
bounded per-process cache with a TTL). When the claimed nonce is exactly the next one by a recent read (and, if that
differs, by the outbox), no RPC is made; otherwise the chain is read again and that value is used (and cached). So
a stale value never turns a right request into a refusal, and a wrong nonce is refused with a clean 422
``delegation-nonce`` as before. The outbox is read before the look-ups only when a recent or fresh chain read does
not already match the claim (:func:`nonce_to_check`): the write transaction checks the claim against the outbox in
any case. An attester this process has not read lately costs one ``getNonce`` even when our outbox knows their
next nonce (a new reviewer, the common case, then needs no outbox read); with the chain down, the outbox answers.

The one thing this cannot see is the attester spending a nonce *elsewhere* (another relayer) since the last read;
such a request would also have raced the chain without the cache. It is caught before any gas is spent: the
publisher re-checks every request against the chain nonce and marks it ``failed`` (``delegation-nonce``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.chain.addresses import checksum_cached
from service.errors import ChainUnavailable
from service.store.outbox import OutboxFacts, next_nonce, read_outbox_facts
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


@dataclass(frozen=True, slots=True)
class NonceCheck:
    """What a submission's nonce is checked against before its look-ups (:func:`nonce_to_check`)."""

    chain: int  # the attester's chain nonce to record with the request (``claimed`` when known to be next)
    expected: int  # the nonce the request must carry
    facts: OutboxFacts | None  # the outbox's facts, when they had to be read


def nonce_to_check(*, rt: Runtime, attester: str, claimed: int, outbox: Callable[[], OutboxFacts]) -> NonceCheck:
    """The EAS nonce a submission of ``attester`` (lower-case) claiming ``claimed`` is checked against before its
    look-ups, with as little I/O as the service's knowledge allows, in this order:

    1. a recent chain read (``rt.nonces``) equals ``claimed``: nothing is read;
    2. a recent chain read differs: ``outbox()`` — the claim is right when it is one past our own requests;
    3. otherwise the chain is read (and cached): a fresh value equal to ``claimed`` needs nothing more;
    4. it differs, or the chain cannot be read: ``outbox()`` (if not read yet) — expected is
       ``store.outbox.next_nonce`` of the two (the claim itself when the chain is down, no recent read is cached
       and the outbox says it is next).

    Skipping the outbox read is safe: the write transaction checks the nonce again against the outbox, under the
    attester's lock (``store.judged.check_nonce``), so a request whose nonce our own outbox has spent is refused
    there (422 ``delegation-nonce``) or, the same request repeated, answered with its review.

    Raises:
        ChainUnavailable: the chain had to be read, could not be, and the outbox does not tell the nonce.
        whatever ``outbox`` raises.
    """
    cached = rt.nonces.get(attester)
    if cached == claimed:
        return NonceCheck(chain=claimed, expected=claimed, facts=None)
    facts = None
    if cached is not None:
        facts = outbox()
        if claimed == next_nonce(chain=cached, own_next=facts.own_next):
            return NonceCheck(chain=claimed, expected=claimed, facts=facts)
    try:
        fresh = rt.eas.get_nonce(attester=checksum_cached(attester))
    except ChainUnavailable:
        facts = facts if facts is not None else outbox()
        if cached is None and claimed == facts.own_next:  # our outbox knows (nothing newer read); the write re-checks
            return NonceCheck(chain=claimed, expected=claimed, facts=facts)
        raise
    rt.nonces.put(attester, fresh)
    if fresh == claimed and facts is None:
        return NonceCheck(chain=fresh, expected=fresh, facts=None)
    facts = facts if facts is not None else outbox()
    return NonceCheck(chain=fresh, expected=next_nonce(chain=fresh, own_next=facts.own_next), facts=facts)


def chain_nonce_for(*, rt: Runtime, attester: str, claimed: int) -> NonceCheck:
    """:func:`nonce_to_check` with the outbox read on a connection of its own (tests, tools).

    Raises:
        ChainUnavailable: as :func:`nonce_to_check`.
        sqlalchemy.exc.SQLAlchemyError: the outbox could not be read.
    """
    read = functools.partial(read_outbox_facts, rt.engine, content_key=None, attester=attester)
    return nonce_to_check(rt=rt, attester=attester, claimed=claimed, outbox=read)
