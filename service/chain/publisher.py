"""The publisher: drains the outbox onto EAS through the relayer, exactly once per signed review.

One round (:meth:`Publisher.run_once`):

1. **Reconcile** every ``submitted`` item (after a restart this runs before anything new is sent) — see below.
   While a transaction is still pending in the node's mempool, nothing new is sent (one publisher per relayer key,
   transactions in nonce order).
2. **Claim** up to ``batch_size`` pending items (``OutboxRepository.claim`` when the repository has one: on
   PostgreSQL the rows stay locked ``FOR UPDATE SKIP LOCKED`` until the claim commits, so another claimer skips them)
   and **pre-check** each off-chain (``EasClient.check_delegated``: signer == attester, deadline > now + margin,
   nonce == chain nonce + earlier items of that attester in this round). Refused items are marked ``failed`` — no
   gas spent. A single bad item would revert a whole ``multiAttestByDelegation``, which is why nothing unchecked is
   ever batched.
3. **Pack** the rest into transactions filled up to the gas cap (2^24; gas computed from data size by
   ``service.chain.calls.gas_for``, no eth_estimateGas). When the claim came back full (more may be waiting) a
   trailing partial transaction after a full one is held back for the next claim, which it heads. **Sign** every
   transaction (consecutive relayer nonces) and record each item's transaction hash (``mark_submitted``) in the
   claim, which commits — all **before** anything is broadcast. Then broadcast each in turn, wait for the receipt,
   read the UIDs from the ``Attested`` logs, ``mark_confirmed``. A transaction that cannot be broadcast (stale
   relayer nonce, transport failure) or stays in the mempool releases the later ones of the round unsent (they would
   wait behind a nonce gap) and the relayer nonce is re-read.
4. A reverted transaction: each item is first looked up on chain (it may have landed already, see below), then
   re-checked; refused → ``failed`` with the reason; otherwise released for another try (``max_attempts``).
   If a preflight ``eth_call`` of a batch reverts (real nodes only), its items are sent one by one so only the bad
   one fails.

Errors: RPC failures (connection refused, timeouts) raise ``ChainUnavailable`` out of ``run_once``; the driver
(:meth:`Publisher.run_forever`) retries with exponential backoff, and items keep their state (a ``submitted`` item
is reconciled on the next round). Reverts and pre-check refusals are ``ChainRejected`` → ``failed``, not retried.

Why this is crash-safe (exactly one attestation per signed request)
-------------------------------------------------------------------
The hash of a signed transaction is known before it is sent, and it is stored first. So a crash leaves every
in-flight item ``submitted`` with a hash, and reconciliation, by hash, finds one of:

* a receipt → settle it as in step 3/4 (success: UIDs from the logs);
* the transaction pending in the mempool → wait for it;
* an unknown transaction (we crashed before broadcasting, or it was dropped) → search the chain for the
  attestation (``EasClient.find_landed``: ``Attested`` logs for attester + recipient + schema since
  ``submitted_block``, same data, the transaction input carrying this request's signature). Found → confirmed.
  Not found and the attester's EAS nonce is still the request's nonce → released and sent again. Not found and
  the nonce has moved on → the signature can never be used any more → ``failed`` (DELEGATION_NONCE).

A resend can never make a second attestation, because the reviewer's signature covers their **EAS nonce** and
EAS increments it when it accepts the signature: of two transactions carrying the same signed request, at most one
succeeds; the other reverts (``InvalidSignature`` — the digest is recomputed with the already incremented nonce).
So "resend when unsure" is safe, and a revert *after a prior submit* is resolved by searching ``Attested`` events
for that attester + recipient + data before concluding anything — which is what step 4 does for every reverted
item. The relayer's own transaction nonce is a separate counter (seeded from ``get_transaction_count(pending)``,
resynced on "nonce too low" or any broadcast failure); a stale relayer nonce only means that transaction cannot
land, so its items are released.

Confirmations and reorgs
------------------------
With ``confirmations`` N > 1 a mined item stays ``submitted`` (``mark_landed``: UID, block number and hash recorded)
until its block has N confirmations (``head − block + 1 ≥ N``), then it is ``confirmed``. Every round re-checks the
landed items (receipt still there, in the same block?) and — when the head moved — the confirmed items of the last
``reorg_window`` blocks (is the canonical block at that height still the recorded hash?). A transaction that left
the canonical chain is back in the node's mempool (wait), re-included elsewhere (settled again: new block, maybe a
new UID), or gone: then the item is ``mark_reorged`` (back to ``pending``, history kept) and sent again — exactly
once, by the same rules as any resend (the reviewer's EAS nonce went back with the orphaned block, so the signature
is valid again; if meanwhile it landed anyway, the nonce check finds it). A reorged item whose delegated deadline has
passed fails with ``deadline-expired``: the reviewer must sign again (``POST /v1/reviews/prepare``).

Not handled: replacing a transaction stuck in the mempool with a higher fee (it blocks the queue until mined or
dropped; dropped → resent as above). Smart-contract (EIP-1271) attesters: the pre-check recovers an EOA signer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.chain.confirmations import confirmations_for
from service.chain.delegation import DelegatedRequest
from service.chain.eas_landed import Landed
from service.chain.eas_relayer import EasClient, SignedTx, StaleRelayerNonce
from service.chain.outbox import Claim, Confirmation, InMemoryOutbox, OutboxItem, OutboxRepository, claim_from
from service.domain import Reason
from service.errors import ChainRejected, ChainUnavailable

__all__ = ["DelegatedRequest", "InMemoryOutbox", "OutboxItem", "OutboxRepository", "PublishReport", "Publisher"]

log = logging.getLogger(__name__)


@dataclass
class PublishReport:
    """What one round did (counts of items)."""

    confirmed: int = 0
    failed: int = 0
    released: int = 0
    in_flight: int = 0
    transactions: int = 0
    awaiting: int = 0  # mined, fewer confirmations than required
    reorged: int = 0  # taken off the chain by a reorg, queued again

    def add(self, other: PublishReport) -> None:
        self.confirmed += other.confirmed
        self.failed += other.failed
        self.released += other.released
        self.in_flight += other.in_flight
        self.transactions += other.transactions
        self.awaiting += other.awaiting
        self.reorged += other.reorged


class Publisher:
    """Single writer for one relayer key. ``clock`` returns unix seconds (float)."""

    def __init__(
        self,
        *,
        client: EasClient,
        outbox: OutboxRepository,
        clock: Callable[[], float] = time.time,
        batch_size: int = 64,
        max_attempts: int = 3,
        retry_delay: int = 5,
        deadline_margin: int = 5,
        receipt_timeout: float | None = None,
        confirmations: int | None = 1,
        reorg_window: int = 64,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.clock = clock
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.deadline_margin = deadline_margin
        self.receipt_timeout = receipt_timeout
        self._confirmations = confirmations  # None: by chain id, read from the node when first needed
        self.reorg_window = reorg_window
        self._wake = threading.Event()
        self._watched_head: int | None = None

    def _now(self) -> int:
        return int(self.clock())

    @property
    def confirmations(self) -> int:
        """N: a mined attestation is confirmed once its block has N confirmations. Raises ChainUnavailable."""
        if self._confirmations is None:
            self._confirmations = confirmations_for(chain_id=self.client.chain_id, configured=None)
        return max(1, self._confirmations)

    # ------------------------------------------------------------------ reconciliation
    def recover(self) -> PublishReport:
        """Reconcile every ``submitted`` item with the chain (see the module docstring).

        Raises:
            ChainUnavailable: RPC failure (nothing is changed for the items not yet handled).
        """
        report = PublishReport()
        by_tx: dict[str, list[OutboxItem]] = {}
        for item in self.outbox.list_submitted():
            by_tx.setdefault(item.tx_hash or "", []).append(item)
        for tx_hash, items in by_tx.items():
            receipt = self.client.receipt(tx_hash=tx_hash) if tx_hash else None
            if receipt is not None:
                report.add(self._settle(items=items, receipt=receipt))
            elif tx_hash and self.client.tx_known(tx_hash=tx_hash):
                report.in_flight += len(items)
            else:
                for item in items:
                    if item.uid is not None:  # it was mined: its block left the chain
                        report.add(self._reorged(item=item, detail=f"transaction {tx_hash} left the chain (reorg)"))
                    else:
                        report.add(self._resolve_unknown(item=item))
        report.add(self._watch_confirmed())
        return report

    def _reorged(self, *, item: OutboxItem, detail: str) -> PublishReport:
        log.warning("outbox item %s: %s", item.id, detail)
        self.outbox.mark_reorged(item_id=item.id, detail=detail, now=self._now())
        self.client.resync_nonce()  # the relayer's transactions in the orphaned blocks are gone too
        return PublishReport(reorged=1)

    def _watch_confirmed(self) -> PublishReport:
        """When the head moved: are the confirmed items of the last ``reorg_window`` blocks still in the canonical
        blocks they were recorded in? The block hashes are read together (one round trip on a JSON-RPC node)."""
        report = PublishReport()
        head = self.client.block_number()
        if head == self._watched_head:
            return report
        items = [i for i in self.outbox.list_confirmed_since(block=head - self.reorg_window) if i.block_hash]
        canonical = self.client.block_hashes(numbers=[i.block_number for i in items if i.block_number is not None])
        for item in items:
            assert item.block_number is not None
            if canonical[item.block_number] != item.block_hash:
                receipt = self.client.receipt(tx_hash=item.tx_hash) if item.tx_hash else None
                if receipt is not None and receipt["status"] == 1:
                    landed = self.client.landed_from_receipt(receipt=receipt, requests=[item.request])[0]
                    if landed is not None and landed.uid == item.uid:
                        continue  # re-included with the same UID: nothing a reader could tell apart
                report.add(self._reorged(item=item, detail=f"block {item.block_number} of {item.tx_hash} left the "
                                                           "chain after confirmation (reorg)"))  # fmt: skip
        self._watched_head = head
        return report

    def _resolve_unknown(self, *, item: OutboxItem) -> PublishReport:
        """The item's transaction is unknown to the node: it never left, or was dropped."""
        report = PublishReport()
        landed = self.client.find_landed(request=item.request, from_block=item.submitted_block or 0)
        if landed is not None:
            self._confirm(item=item, landed=landed, report=report)
        elif self.client.get_nonce(attester=item.request.attester) > item.request.nonce:
            self._fail(item, Reason.DELEGATION_NONCE, "EAS nonce consumed by another attestation", report)
        else:
            self.outbox.release(
                item_ids=[item.id], retry_at=self._now(), detail="transaction unknown to the node", now=self._now()
            )
            report.released += 1
        return report

    def _settle(self, *, items: Sequence[OutboxItem], receipt: Any) -> PublishReport:
        report = PublishReport()
        block = int(receipt["blockNumber"])
        if receipt["status"] == 1:
            found = self.client.landed_from_receipt(receipt=receipt, requests=[i.request for i in items])
            enough = self.confirmations <= 1 or self.client.block_number() - block + 1 >= self.confirmations
            confirmed = [
                Confirmation(
                    item_id=item.id,
                    uid=landed.uid,
                    tx_hash=landed.tx_hash,
                    block_number=landed.block_number,
                    block_hash=landed.block_hash,
                )
                for item, landed in zip(items, found, strict=True)
                if landed is not None and enough
            ]
            if confirmed:  # the items of one transaction: confirmed together
                self.outbox.mark_confirmed_many(confirmed=confirmed, now=self._now())
                report.confirmed += len(confirmed)
            for item, landed in zip(items, found, strict=True):
                if landed is not None and enough:
                    continue
                if landed is not None:
                    self.outbox.mark_landed(item_id=item.id, uid=landed.uid, tx_hash=landed.tx_hash,
                                            block_number=landed.block_number, block_hash=landed.block_hash or "",
                                            now=self._now())  # fmt: skip
                    report.awaiting += 1
                else:  # should not happen: a successful tx emits one Attested per request
                    report.add(self._after_revert(item=item, block=block, detail="no Attested event in receipt"))
            return report
        detail = "transaction reverted"
        if len(items) == 1:
            detail = self.client.revert_reason(
                data=self.client.calldata(requests=[items[0].request]), block_number=block
            ).detail
        for item in items:
            report.add(self._after_revert(item=item, block=block, detail=detail))
        return report

    def _after_revert(self, *, item: OutboxItem, block: int, detail: str) -> PublishReport:
        """A transaction carrying ``item`` reverted: landed earlier? refused now? else retry (bounded)."""
        report = PublishReport()
        landed = self.client.find_landed(request=item.request, from_block=item.submitted_block or block)
        if landed is not None:
            self._confirm(item=item, landed=landed, report=report)
            return report
        try:
            self.client.check_delegated(request=item.request, now=self._now() + self.deadline_margin)
        except ChainRejected as exc:
            self._fail(item, exc.reason, exc.detail, report)
            return report
        if item.attempts >= self.max_attempts:
            self._fail(item, Reason.TX_REVERTED, f"{detail} ({item.attempts} attempts)", report)
            return report
        self.outbox.release(
            item_ids=[item.id], retry_at=self._now() + self.retry_delay, detail=detail, now=self._now()
        )
        report.released += 1
        return report

    def _confirm(
        self, *, item: OutboxItem, landed: Landed, report: PublishReport, store: Claim | None = None
    ) -> None:
        sink: Claim | OutboxRepository = store if store is not None else self.outbox
        if self.confirmations > 1 and self.client.block_number() - landed.block_number + 1 < self.confirmations:
            # found by search (crash recovery, nonce moved): still needs its confirmations
            sink.mark_landed(item_id=item.id, uid=landed.uid, tx_hash=landed.tx_hash,
                                    block_number=landed.block_number, block_hash=landed.block_hash or "",
                                    now=self._now())  # fmt: skip
            report.awaiting += 1
            return
        sink.mark_confirmed(
            item_id=item.id,
            uid=landed.uid,
            tx_hash=landed.tx_hash,
            block_number=landed.block_number,
            now=self._now(),
            block_hash=landed.block_hash,
        )
        report.confirmed += 1

    def _fail(
        self, item: OutboxItem, reason: Reason, detail: str, report: PublishReport, store: Claim | None = None
    ) -> None:
        log.info("outbox item %s failed: %s %s", item.id, reason.value, detail)
        sink: Claim | OutboxRepository = store if store is not None else self.outbox
        sink.mark_failed(item_id=item.id, reason=reason, detail=detail, now=self._now())
        report.failed += 1

    # ------------------------------------------------------------------ sending
    def run_once(self) -> PublishReport:
        """Reconcile, then claim, pre-check, pack and send one claim of items (possibly several transactions).
        Returns what happened.

        Raises:
            ChainUnavailable: RPC failure; safe to call again later.
        """
        report = self.recover()
        if report.in_flight:
            return report
        now = self._now()
        with claim_from(outbox=self.outbox, limit=self.batch_size, now=now) as claim:
            ready = self._precheck(items=claim.items, now=now, report=report, store=claim)
            batches = self._pack(ready, whole_queue=len(claim.items) < self.batch_size)
            try:
                signed = self._sign_all(batches=batches, claim=claim, report=report)
            except BaseException:
                self.client.resync_nonce()  # nonces reserved for transactions that will never be sent
                raise
        # the claim is committed: every transaction below has its hash on record before it is broadcast
        for k, (tx, items) in enumerate(signed):
            sent, go_on = self._broadcast_and_settle(tx=tx, items=items, later=signed[k + 1 :])
            report.add(sent)
            if not go_on:
                break
        return report

    def _precheck(
        self, *, items: Sequence[OutboxItem], now: int, report: PublishReport, store: Claim | None = None
    ) -> list[OutboxItem]:
        # every attester's chain nonce up front: one round trip when the client batches them
        expected = self.client.get_nonces(attesters=[i.request.attester for i in items])
        ready: list[OutboxItem] = []
        for item in items:
            request = item.request
            try:
                self.client.check_delegated(
                    request=request, now=now + self.deadline_margin, expected_nonce=expected[request.attester]
                )
            except ChainRejected as exc:
                if exc.reason is Reason.DELEGATION_EXPIRED and item.reorgs:
                    self._fail(item, Reason.DEADLINE_EXPIRED, f"its attestation was taken off the chain by a reorg "
                               f"and the signature expired at {request.deadline}: sign the review again "
                               "(POST /v1/reviews/prepare, then POST /v1/reviews)", report, store)  # fmt: skip
                    continue
                sent_before = item.attempts > 0 and request.nonce < expected[request.attester]
                if exc.reason is Reason.DELEGATION_NONCE and sent_before:
                    # a lost receipt, a crash: it may be on chain already
                    landed = self.client.find_landed(request=request, from_block=item.submitted_block or 0)
                    if landed is not None:
                        self._confirm(item=item, landed=landed, report=report, store=store)
                        continue
                self._fail(item, exc.reason, exc.detail, report, store)
                continue
            expected[request.attester] += 1
            ready.append(item)
        return ready

    def _pack(self, items: Sequence[OutboxItem], *, whole_queue: bool = True) -> list[list[OutboxItem]]:
        """Split ``items`` (in order) into transactions filled up to the gas cap by the gas model
        (``EasClient.plan``). When the claim may have left items behind (``whole_queue`` False) a trailing partial
        transaction after at least one full one is held back: its items stay pending and head the next claim,
        where they fill a transaction with what follows them."""
        plans = self.client.plan(requests=[i.request for i in items])
        out: list[list[OutboxItem]] = []
        start = 0
        for plan in plans:
            out.append(list(items[start : start + len(plan)]))
            start += len(plan)
        if not whole_queue and len(out) > 1:
            out.pop()
        return out

    def _sign_all(
        self, *, batches: Sequence[Sequence[OutboxItem]], claim: Claim, report: PublishReport
    ) -> list[tuple[SignedTx, list[OutboxItem]]]:
        """Sign one transaction per batch (consecutive relayer nonces) and record each as submitted in the claim.
        A batch whose preflight ``eth_call`` reverts (real nodes only) is split so only the bad item fails."""
        signed: list[tuple[SignedTx, list[OutboxItem]]] = []
        pending = [list(b) for b in batches]
        head: int | None = None
        while pending:
            batch = pending.pop(0)
            try:
                tx = self.client.sign_delegated(requests=[i.request for i in batch])
            except ChainRejected as exc:  # preflight eth_call reverted
                if len(batch) == 1:
                    self._fail(batch[0], exc.reason, exc.detail, report, claim)
                else:  # isolate the bad one(s); earlier items' nonces land first
                    pending[:0] = [[item] for item in batch]
                continue
            if head is None:
                head = self.client.block_number()
            claim.mark_submitted(item_ids=[i.id for i in batch], tx_hash=tx.tx_hash, submitted_block=head,
                                 now=self._now())  # fmt: skip
            submitted = [
                replace(i, attempts=i.attempts + 1, tx_hash=tx.tx_hash, submitted_block=i.submitted_block or head)
                for i in batch
            ]
            signed.append((tx, submitted))
            report.transactions += 1
        return signed

    def _broadcast_and_settle(
        self, *, tx: SignedTx, items: Sequence[OutboxItem], later: Sequence[tuple[SignedTx, list[OutboxItem]]]
    ) -> tuple[PublishReport, bool]:
        """Broadcast one recorded transaction and settle it; False: do not broadcast the ``later`` ones. When it
        cannot go out (stale relayer nonce, transport failure) or stays in the mempool, the ``later`` ones —
        recorded, never broadcast — are released so they do not wait behind a nonce gap.

        Raises:
            ChainUnavailable: transport failure (the item stays ``submitted``; reconciled next round).
        """
        report = PublishReport()
        ids = [i.id for i in items]

        def release_later(detail: str) -> None:
            for _, rest in later:
                self.outbox.release(item_ids=[i.id for i in rest], retry_at=self._now(), detail=detail,
                                    now=self._now())  # fmt: skip
                report.released += len(rest)
            if later:
                self.client.resync_nonce()

        try:
            self.client.broadcast(tx=tx)
        except StaleRelayerNonce as exc:
            self.outbox.release(item_ids=ids, retry_at=self._now(), detail=exc.detail, now=self._now())
            report.released += len(items)
            release_later("an earlier transaction of the round was not sent")
            return report, False
        except ChainUnavailable:
            release_later("an earlier transaction of the round was not sent")
            raise
        receipt = self.client.wait_receipt(tx_hash=tx.tx_hash, timeout=self.receipt_timeout)
        if receipt is None:
            report.in_flight += len(items)
            release_later("an earlier transaction of the round is still pending")
            return report, False
        report.add(self._settle(items=items, receipt=receipt))
        return report, True

    # ------------------------------------------------------------------ driver
    def wakeup(self) -> None:
        """Make a sleeping :meth:`run_forever` start its next round now (e.g. right after an enqueue)."""
        self._wake.set()

    def drain(self, *, max_rounds: int = 100) -> PublishReport:
        """Run rounds until nothing is pending-and-due or in flight (tests, CLI). Raises ChainUnavailable."""
        total = PublishReport()
        for _ in range(max_rounds):
            report = self.run_once()
            total.add(report)
            if not report.in_flight and not report.transactions and not report.released and not report.reorged:
                break
        return total

    def run_forever(
        self,
        *,
        stop: threading.Event,
        interval: float = 0.5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """The outbox driver: a round every ``interval`` seconds (or on :meth:`wakeup`); on ``ChainUnavailable``
        (RPC down) back off exponentially from ``backoff_initial`` to ``backoff_max`` and retry. Returns when
        ``stop`` is set. Never raises for chain or storage trouble (logged, retried)."""
        backoff = backoff_initial
        while not stop.is_set():
            try:
                report = self.run_once()
            except ChainUnavailable as exc:
                log.warning("chain unavailable, retrying in %.1fs: %s", backoff, exc.detail)
                wait, backoff = backoff, min(backoff * 2, backoff_max)
            except Exception:
                log.exception("publisher round failed, retrying in %.1fs", backoff)
                wait, backoff = backoff, min(backoff * 2, backoff_max)
            else:
                backoff = backoff_initial
                busy = report.transactions or report.released or report.in_flight
                wait = 0.0 if report.transactions else (interval if not busy else min(interval, 0.2))
            if sleep is not None:
                sleep(wait)
            elif wait:
                self._wake.wait(wait)
            self._wake.clear()
