"""Chain identity at start, and ``omatrust chain adopt``.

At start (:func:`check_chain`) the configured chain's identity (chain id, genesis block hash, EAS address) is
recorded and compared with every chain the store refers to (reviews with a UID, outbox items submitted or confirmed,
sync checkpoints). Any other chain → :class:`ChainMismatch`: the service refuses to start rather than serve reviews
whose attestations the chain does not have. Rows written before identities were recorded are claimed for the
configured chain only when their UIDs are found on it.

:func:`adopt` moves a store onto the configured chain: a review whose attestation is on it is relabelled; one that
is not is published again when its delegated signature is still valid (outbox item back to ``pending``; history
kept), else marked ``failed: deadline-expired`` and withdrawn (not live); a review indexed from another chain (no
signature to publish) is withdrawn with ``not-on-chain``; checkpoints of other chains are dropped (sync starts over).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from service.chain.identity import ChainIdentity
from service.domain import Reason
from service.errors import ChainMismatch
from service.store.chains import (
    chain_rows,
    ensure_chain,
    forget_checkpoints_elsewhere,
    label_unlabelled,
    outbox_elsewhere,
    referenced_chains,
    reviews_elsewhere,
    unlabelled_count,
    unlabelled_uids,
)
from service.store.engine import session_scope
from service.store.outbox import outboxes_for
from service.store.tables import OutboxRow, ReviewRow
from service.workflows.runtime import Runtime
from service.workflows.withdraw import withdraw_review

log = logging.getLogger(__name__)

LEGACY_SAMPLE = 20  # UIDs of pre-identity rows looked up on the configured chain before claiming them
DEADLINE_MARGIN = 30  # seconds a re-queued request must still have before its deadline


def _ways_out(configured: ChainIdentity) -> str:
    return (
        "Ways out: (1) point the service at the chain the store was written against (OMATRUST_RPC_URL, or "
        "OMATRUST_EMBEDDED_CHAIN_PATH for the embedded chain); (2) use a fresh database (OMATRUST_DATABASE_URL); "
        f"(3) run `omatrust chain adopt` to move this store onto {configured.describe()}: reviews whose "
        "attestations are missing there are published again while their signatures are valid, the others are "
        "marked publish-failed and stop counting."
    )


def check_chain(*, rt: Runtime, now: int) -> int:
    """Record the configured chain's identity and return its ``chains`` id.

    Raises:
        ChainMismatch: the store refers to another chain (the message names both and the ways out).
        ChainUnavailable: RPC failure.
    """
    configured = rt.eas.identity
    with session_scope(rt.engine) as session:
        ref = _ensure(session, configured, now)
        others = {r: n for r, n in referenced_chains(session).items() if r != ref}
        described = [f"{c.chain_id} / genesis {c.genesis_hash} / EAS {c.eas_address} ({others[c.id]} rows)"
                     for c in chain_rows(session, ids=list(others)) if c.id is not None]  # fmt: skip
        legacy = unlabelled_count(session)
        sample = unlabelled_uids(session, limit=LEGACY_SAMPLE) if legacy else []
    if legacy and not others:
        missing = [uid for uid in sample if rt.eas.get_attestation(uid=uid) is None]
        if not missing:
            with session_scope(rt.engine) as session:
                label_unlabelled(session, chain_ref=ref)
            log.info("claimed %d rows written before chain identities were recorded for %s", legacy,
                     configured.describe())  # fmt: skip
        else:
            described.append(f"an unrecorded chain ({legacy} rows; e.g. attestation {missing[0]} is not on the "
                             "configured chain)")  # fmt: skip
    if described:
        raise ChainMismatch(
            Reason.CHAIN_MISMATCH,
            f"the store refers to attestations on another chain — stored: {'; '.join(described)}; configured: "
            f"{configured.describe()}. {_ways_out(configured)}",
        )
    return ref


def _ensure(session: Session, identity: ChainIdentity, now: int) -> int:
    return ensure_chain(session, chain_id=identity.chain_id, genesis_hash=identity.genesis_hash,
                        eas_address=identity.eas_address, now=now)  # fmt: skip


@dataclass
class AdoptReport:
    relabelled: int = 0
    requeued: int = 0
    failed: int = 0
    withdrawn: int = 0
    checkpoints_dropped: int = 0

    def summary(self) -> str:
        return (f"{self.relabelled} attestations found on this chain, {self.requeued} reviews queued for publishing "
                f"again, {self.failed} marked publish-failed (deadline passed), {self.withdrawn} indexed reviews "
                f"withdrawn (not on this chain), {self.checkpoints_dropped} sync checkpoints dropped")  # fmt: skip


def _note(row: OutboxRow, now: int, **event: Any) -> None:
    row.history = [*(row.history or []), {"at": now, **event}]


def adopt(*, rt: Runtime, now: int) -> AdoptReport:
    """Move the store onto the configured chain (see the module docstring). Idempotent.

    Raises:
        ChainUnavailable: RPC failure (nothing of the failing step is committed; run again).
    """
    configured = rt.eas.identity
    report = AdoptReport()
    with session_scope(rt.engine) as session:
        ref = _ensure(session, configured, now)
        reviews = reviews_elsewhere(session, chain_ref=ref)
        outbox = outboxes_for(session, review_ids=[r.id for r in reviews])
        handled: set[int] = set()
        for review in reviews:
            assert review.attestation_uid is not None
            record = rt.eas.get_attestation(uid=review.attestation_uid)
            item = outbox.get(review.id)
            if record is not None and record.data.hex() == review.data_hex.removeprefix("0x"):
                review.chain_ref = ref
                session.add(review)
                if item is not None:
                    item.chain_ref = ref
                    session.add(item)
                    handled.add(item.id or 0)
                report.relabelled += 1
                continue
            if item is None:  # indexed from another chain: nothing we could publish
                withdraw_review(session, rt=rt, review_id=review.id, now=now)
                report.withdrawn += 1
                continue
            handled.add(item.id or 0)
            _requeue_or_fail(session, rt=rt, item=item, now=now, report=report, configured=configured)
        for item in outbox_elsewhere(session, chain_ref=ref):
            if (item.id or 0) not in handled:
                _requeue_or_fail(session, rt=rt, item=item, now=now, report=report, configured=configured)
        report.checkpoints_dropped = forget_checkpoints_elsewhere(session, chain_ref=ref)
    rt.publisher_wakeup()
    return report


def _requeue_or_fail(
    session: Session, *, rt: Runtime, item: OutboxRow, now: int, report: AdoptReport, configured: ChainIdentity
) -> None:
    old = {"uid": item.uid, "txHash": item.tx_hash, "block": item.block_number}
    if item.deadline > now + DEADLINE_MARGIN:
        _note(item, now, event="adopt-requeued", chain=configured.describe(), previous=old)
        item.state, item.tx_hash, item.uid, item.block_number, item.block_hash = "pending", None, None, None, None
        item.submitted_block, item.attempts, item.next_attempt_at, item.chain_ref = None, 0, now, None
        item.last_error, item.updated_at = "re-queued by chain adopt", now
        session.add(item)
        review = session.get(ReviewRow, item.review_id, with_for_update=True)
        if review is not None:
            review.attestation_uid, review.chain_ref, review.attestation_block = None, None, None
            session.add(review)
        report.requeued += 1
        return
    _note(item, now, event="adopt-failed", chain=configured.describe(), previous=old)
    item.state, item.updated_at = "failed", now
    item.last_error = (f"{Reason.DEADLINE_EXPIRED.value}: not on {configured.describe()} and its signature expired "
                       f"at {item.deadline}; the reviewer can sign and submit the review again")  # fmt: skip
    session.add(item)
    withdraw_review(session, rt=rt, review_id=item.review_id, now=now)
    report.failed += 1
