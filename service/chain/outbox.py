"""The publish outbox as the publisher sees it: ``OutboxRepository`` (a Protocol the store implements over SQL) and
``InMemoryOutbox`` (the reference implementation, used by tests, the benchmark and ephemeral runs).

State machine of one item (one signed review)::

    pending ──mark_submitted──▶ submitted ──mark_confirmed──▶ confirmed   (terminal, except for a reorg)
       ▲                          │  ▲ │    └────mark_failed────▶ failed      (terminal)
       │                          │  └─┘ mark_landed (mined, waiting for N confirmations: still "submitted")
       ├──────────release─────────┘
       └──────mark_reorged─────── submitted (landed) / confirmed, when its block left the canonical chain
    pending ──mark_failed──▶ failed     (pre-check refused it: no gas was spent)

Contract every implementation must honour (the publisher's crash safety rests on it):

* Every ``mark_*`` / ``release`` is **durable when it returns** (committed). ``mark_submitted`` is called with the
  transaction hash *before* the transaction is broadcast, so after a crash the hash is always on record.
* Exactly one publisher runs per relayer key (its transaction nonces are sequential). ``claim_pending`` must not
  change state. A repository may also offer ``claim`` (see :class:`Claim`): the claimed rows stay locked
  (PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``) until the claim commits the publisher's decisions about them
  (failed, confirmed, submitted with its transaction hash), so two claimers — two relayer keys, a stray second
  publisher — never block on or take the same row. Without ``claim`` the publisher wraps ``claim_pending``
  (:class:`PlainClaim`: each decision is written at once, nothing is locked; right for a single writer).
* Items are returned oldest first (by ``id``, i.e. enqueue order): an attester's requests carry consecutive EAS
  nonces and must be sent in that order.
* ``mark_confirmed`` / ``mark_failed`` / ``release`` on an item in a terminal state are no-ops (idempotent), and
  ``mark_confirmed`` wins over everything (a found attestation is a fact).
* Building an ``OutboxItem`` from a stored row may raise ``MalformedInput`` (``DelegatedRequest`` validates); the
  repository should then mark that row failed (``ATTESTATION_DATA_INVALID``) and skip it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from service.chain.delegation import DelegatedRequest
from service.domain import Reason


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored publish request, as handed to the publisher.

    ``attempts``: how many times it was put in a transaction (incremented by ``mark_submitted``).
    ``tx_hash``: the transaction it was last put in (set while ``submitted``).
    ``submitted_block``: head block number when it was *first* submitted — kept across ``release`` — the lower bound
    for finding its attestation on chain later.
    """

    id: int
    request: DelegatedRequest
    attempts: int = 0
    tx_hash: str | None = None
    submitted_block: int | None = None
    # Where it landed (set once mined: while waiting for confirmations, and when confirmed) and how many times a
    # reorg took it off the chain.
    uid: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    reorgs: int = 0


@dataclass(frozen=True, slots=True)
class Confirmation:
    """An item found in the chain with enough confirmations (the arguments of ``mark_confirmed``)."""

    item_id: int
    uid: str
    tx_hash: str
    block_number: int
    block_hash: str | None = None


class OutboxRepository(Protocol):
    """What the publisher needs from storage. All methods are keyword-only; times are unix seconds."""

    def claim_pending(self, *, limit: int, now: int) -> Sequence[OutboxItem]:
        """Up to ``limit`` items in state ``pending`` whose retry time (``next_attempt_at``) is ``<= now``, oldest
        (lowest id) first. Does not change state."""
        ...

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        """``pending`` → ``submitted``: set ``tx_hash``; set ``submitted_block`` only if not set yet;
        ``attempts += 1``. Durable on return; called BEFORE the transaction is broadcast."""
        ...

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        """``submitted`` stays ``submitted``: record that it is mined (``uid``, tx, block number and hash) but has
        fewer confirmations than required. A no-op in any other state."""
        ...

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        """Any state → ``confirmed`` with the attestation ``uid`` (0x-hex 32 bytes), the ``tx_hash`` that carried it
        (may differ from the recorded one when found by search), its block and block hash. Terminal (but see
        :meth:`mark_reorged`)."""
        ...

    def mark_confirmed_many(self, *, confirmed: Sequence[Confirmation], now: int) -> None:
        """:meth:`mark_confirmed` of each, together (one transaction: the items of one mined transaction)."""
        ...

    def mark_reorged(self, *, item_id: int, detail: str, now: int) -> None:
        """``submitted`` (landed) or ``confirmed`` → ``pending``: its block left the canonical chain. Clears tx
        hash, UID and block (the review no longer claims an attestation), ``reorgs += 1``, keeps ``attempts`` and
        ``submitted_block``, records the event in the history."""
        ...

    def list_confirmed_since(self, *, block: int) -> Sequence[OutboxItem]:
        """Confirmed items whose block number is ``>= block`` (with uid, block number and hash): watched for reorgs."""
        ...

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        """``pending``/``submitted`` → ``failed`` with ``reason`` (a ``Reason`` value, store ``reason.value``) and a
        human ``detail``. Terminal: the request can never land (bad signature, expired, nonce consumed, …)."""
        ...

    def release(self, *, item_ids: Sequence[int], retry_at: int, detail: str, now: int) -> None:
        """``submitted`` → ``pending`` (its transaction will never land, or reverted for a reason that may pass
        next time): clear ``tx_hash``, keep ``attempts`` and ``submitted_block``, ``next_attempt_at = retry_at``,
        remember ``detail`` as the last error."""
        ...

    def list_submitted(self) -> Sequence[OutboxItem]:
        """All items in state ``submitted`` (with their ``tx_hash``), oldest first — reconciled on every round and
        after a restart before anything new is sent."""
        ...


class Claim(Protocol):
    """Claimed pending items and the publisher's decisions about them before anything is broadcast.

    The ``mark_*`` methods have the repository's meaning; they are durable once the claim's context exits without an
    exception (a SQL claim commits them in the transaction that holds the rows' locks; :class:`PlainClaim` writes
    each at once). An exception leaving the context discards what a transactional claim recorded."""

    items: Sequence[OutboxItem]

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None: ...

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None: ...

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None: ...

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None: ...


@dataclass
class PlainClaim:
    """A :class:`Claim` over any ``OutboxRepository``: ``claim_pending``'s items, decisions written through at once.
    Locks nothing (one publisher per relayer key is the guarantee)."""

    outbox: OutboxRepository
    items: Sequence[OutboxItem]

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        self.outbox.mark_submitted(item_ids=item_ids, tx_hash=tx_hash, submitted_block=submitted_block, now=now)

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        self.outbox.mark_landed(item_id=item_id, uid=uid, tx_hash=tx_hash, block_number=block_number,
                                block_hash=block_hash, now=now)  # fmt: skip

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        self.outbox.mark_confirmed(item_id=item_id, uid=uid, tx_hash=tx_hash, block_number=block_number, now=now,
                                   block_hash=block_hash)  # fmt: skip

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        self.outbox.mark_failed(item_id=item_id, reason=reason, detail=detail, now=now)


def claim_from(*, outbox: OutboxRepository, limit: int, now: int) -> AbstractContextManager[Claim]:
    """The repository's own ``claim(limit=, now=)`` when it has one (locking), else a :class:`PlainClaim` of
    ``claim_pending``. Raises what the repository raises."""
    own = getattr(outbox, "claim", None)
    if own is not None:
        claimed: AbstractContextManager[Claim] = own(limit=limit, now=now)
        return claimed
    return plain_claim(outbox, limit=limit, now=now)


@contextmanager
def plain_claim(outbox: OutboxRepository, *, limit: int, now: int) -> Iterator[Claim]:
    """A claim of ``claim_pending``'s items whose decisions are written one at a time (no lock held)."""
    yield PlainClaim(outbox=outbox, items=outbox.claim_pending(limit=limit, now=now))


@dataclass
class _Row:
    item: OutboxItem
    key: str
    state: str = "pending"
    next_attempt_at: int = 0
    uid: str | None = None
    block_number: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """Snapshot of an in-memory row (tests and diagnostics)."""

    item: OutboxItem
    state: str
    uid: str | None
    block_number: int | None
    last_error: str | None


class InMemoryOutbox:
    """``OutboxRepository`` in a dict, thread-safe. ``enqueue`` is idempotent on ``key`` (the content key)."""

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._by_key: dict[str, int] = {}
        self._lock = threading.Lock()

    def enqueue(self, *, request: DelegatedRequest, key: str) -> int:
        """Add a pending item (or return the id of the item already holding ``key``)."""
        with self._lock:
            if key in self._by_key:
                return self._by_key[key]
            item_id = len(self._rows) + 1
            self._rows[item_id] = _Row(item=OutboxItem(id=item_id, request=request), key=key)
            self._by_key[key] = item_id
            return item_id

    def record(self, *, item_id: int) -> OutboxRecord:
        with self._lock:
            row = self._rows[item_id]
            return OutboxRecord(row.item, row.state, row.uid, row.block_number, row.last_error)

    def records(self) -> list[OutboxRecord]:
        with self._lock:
            return [OutboxRecord(r.item, r.state, r.uid, r.block_number, r.last_error) for r in self._rows.values()]

    # -- OutboxRepository
    def claim_pending(self, *, limit: int, now: int) -> Sequence[OutboxItem]:
        with self._lock:
            ready = [r.item for r in self._rows.values() if r.state == "pending" and r.next_attempt_at <= now]
            return sorted(ready, key=lambda i: i.id)[:limit]

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        with self._lock:
            for item_id in item_ids:
                row = self._rows[item_id]
                if row.state != "pending":
                    continue
                first = row.item.submitted_block if row.item.submitted_block is not None else submitted_block
                row.item = replace(row.item, attempts=row.item.attempts + 1, tx_hash=tx_hash, submitted_block=first)
                row.state = "submitted"

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        with self._lock:
            row = self._rows[item_id]
            if row.state != "submitted":
                return
            row.uid, row.block_number = uid, block_number
            row.item = replace(row.item, tx_hash=tx_hash, uid=uid, block_number=block_number, block_hash=block_hash)

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        with self._lock:
            row = self._rows[item_id]
            if row.state == "confirmed":
                return
            row.state, row.uid, row.block_number = "confirmed", uid, block_number
            row.item = replace(row.item, tx_hash=tx_hash, uid=uid, block_number=block_number, block_hash=block_hash)

    def mark_confirmed_many(self, *, confirmed: Sequence[Confirmation], now: int) -> None:
        for c in confirmed:
            self.mark_confirmed(item_id=c.item_id, uid=c.uid, tx_hash=c.tx_hash, block_number=c.block_number, now=now,
                                block_hash=c.block_hash)  # fmt: skip

    def mark_reorged(self, *, item_id: int, detail: str, now: int) -> None:
        with self._lock:
            row = self._rows[item_id]
            if row.state not in ("submitted", "confirmed"):
                return
            row.state, row.uid, row.block_number = "pending", None, None
            row.next_attempt_at, row.last_error = now, detail
            row.item = replace(
                row.item, tx_hash=None, uid=None, block_number=None, block_hash=None, reorgs=row.item.reorgs + 1
            )

    def list_confirmed_since(self, *, block: int) -> Sequence[OutboxItem]:
        with self._lock:
            return sorted(
                (r.item for r in self._rows.values()
                 if r.state == "confirmed" and r.block_number is not None and r.block_number >= block),
                key=lambda i: i.id,
            )  # fmt: skip

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        with self._lock:
            row = self._rows[item_id]
            if row.state in ("confirmed", "failed"):
                return
            row.state, row.last_error = "failed", f"{reason.value}: {detail}"

    def release(self, *, item_ids: Sequence[int], retry_at: int, detail: str, now: int) -> None:
        with self._lock:
            for item_id in item_ids:
                row = self._rows[item_id]
                if row.state != "submitted":
                    continue
                row.state, row.next_attempt_at, row.last_error = "pending", retry_at, detail
                row.item = replace(row.item, tx_hash=None)

    def list_submitted(self) -> Sequence[OutboxItem]:
        with self._lock:
            return sorted((r.item for r in self._rows.values() if r.state == "submitted"), key=lambda i: i.id)
