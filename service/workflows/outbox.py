"""``OutboxRepository`` (service.chain.outbox) over SQL. Every method commits before it returns.

Every row records the chain it is published on (``chain_ref``) and its history (submitted, landed, confirmed,
reorged, released, failed: one entry each). An item that fails for good withdraws its review (``on_failed``:
not live, see service.workflows.withdraw).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.chain.outbox import Claim, Confirmation, OutboxItem, plain_claim
from service.chain.publisher import DelegatedRequest
from service.domain import Reason
from service.errors import MalformedInput
from service.store.engine import session_scope
from service.store.outbox import TERMINAL, in_state, pending_due, rows_by_id
from service.store.tables import OutboxRow, ReviewRow


def _item(row: OutboxRow) -> OutboxItem:
    """Raises MalformedInput when the stored request does not parse (the caller fails that row)."""
    assert row.id is not None
    request = DelegatedRequest(
        attester=row.attester,
        data=bytes.fromhex(row.data_hex.removeprefix("0x")),
        recipient=row.recipient,
        deadline=row.deadline,
        nonce=int(row.nonce),
        signature=bytes.fromhex(row.signature.removeprefix("0x")),
    )
    return OutboxItem(
        id=row.id,
        request=request,
        attempts=row.attempts,
        tx_hash=row.tx_hash,
        submitted_block=row.submitted_block,
        uid=row.uid,
        block_number=row.block_number,
        block_hash=row.block_hash,
        reorgs=sum(1 for event in row.history or [] if event.get("event") == "reorged"),
    )


def _note(row: OutboxRow, now: int, event: str, **fields: Any) -> None:
    row.history = [*(row.history or []), {"at": now, "event": event, **{k: v for k, v in fields.items() if v}}]


class SqlOutbox:
    def __init__(
        self,
        *,
        engine: Engine,
        chain_ref: int | None = None,
        on_failed: Callable[[Session, str, int], object] | None = None,
        digits: Sequence[str] | None = None,
    ) -> None:
        self.engine = engine
        # Only attesters whose address ends in one of these hex digits: one relayer key's share when several
        # publish in parallel (service.store.jobqueue.slot_digits); None → every attester.
        self.digits = tuple(digits) if digits is not None else None
        self.chain_ref = chain_ref
        self.on_failed = on_failed  # (session, review id, now): withdraw the review in the same transaction

    def _items(self, rows: list[OutboxRow], now: int, store: Claim | None = None) -> list[OutboxItem]:
        items, broken = [], []
        for row in rows:
            try:
                items.append(_item(row))
            except MalformedInput as exc:
                broken.append((row.id, exc.detail))
        sink: Claim | SqlOutbox = store if store is not None else self
        for item_id, detail in broken:
            assert item_id is not None
            sink.mark_failed(item_id=item_id, reason=Reason.ATTESTATION_DATA_INVALID, detail=detail, now=now)
        return items

    def claim_pending(self, *, limit: int, now: int) -> Sequence[OutboxItem]:
        with session_scope(self.engine) as session:
            rows = pending_due(session, limit=limit, now=now, digits=self.digits)
        return self._items(rows, now)

    def list_submitted(self) -> Sequence[OutboxItem]:
        with session_scope(self.engine) as session:
            rows = in_state(session, state="submitted", digits=self.digits)
        return self._items(rows, 0)

    def claim(self, *, limit: int, now: int) -> AbstractContextManager[Claim]:
        """Claim up to ``limit`` due pending items (see ``service.chain.outbox.Claim``). On PostgreSQL the rows are
        locked ``FOR UPDATE SKIP LOCKED`` in a transaction that records the publisher's decisions and commits them
        when the context exits, so concurrent claimers never wait for or share a row. On SQLite (one writer at a
        time anyway) the rows are read in a short transaction and each decision is written at once, as
        :class:`PlainClaim` does — a read transaction kept open across chain calls would fail to upgrade to a write
        once an API request had written in between."""
        if self.engine.dialect.name != "postgresql":
            return plain_claim(self, limit=limit, now=now)
        return self._locked_claim(limit=limit, now=now)

    @contextmanager
    def _locked_claim(self, *, limit: int, now: int) -> Iterator[Claim]:
        with session_scope(self.engine) as session:
            rows = pending_due(session, limit=limit, now=now, digits=self.digits, skip_locked=True)
            claim = _SessionClaim(outbox=self, session=session, items=[])
            claim.items = self._items(rows, now, store=claim)
            yield claim

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        with session_scope(self.engine) as session:
            self._submitted(session, item_ids=item_ids, tx_hash=tx_hash, submitted_block=submitted_block, now=now)

    def _submitted(
        self, session: Session, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int
    ) -> None:
        for row in rows_by_id(session, ids=item_ids):
            if row.state != "pending":
                continue
            row.state, row.tx_hash, row.attempts, row.updated_at = "submitted", tx_hash, row.attempts + 1, now
            row.chain_ref = self.chain_ref
            if row.submitted_block is None:
                row.submitted_block = submitted_block
            _note(row, now, "submitted", txHash=tx_hash)
            session.add(row)

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        with session_scope(self.engine) as session:
            self._landed(session, item_id=item_id, uid=uid, tx_hash=tx_hash, block_number=block_number,
                         block_hash=block_hash, now=now)  # fmt: skip

    def _landed(
        self, session: Session, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        for row in rows_by_id(session, ids=[item_id]):
            if row.state != "submitted" or (row.uid, row.block_hash) == (uid.lower(), block_hash):
                continue
            row.uid, row.tx_hash, row.block_number, row.block_hash = uid.lower(), tx_hash, block_number, block_hash
            row.updated_at = now
            _note(row, now, "landed", txHash=tx_hash, uid=uid.lower(), block=block_number)
            session.add(row)

    def mark_reorged(self, *, item_id: int, detail: str, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=[item_id]):
                if row.state not in ("submitted", "confirmed"):
                    continue
                _note(row, now, "reorged", txHash=row.tx_hash, uid=row.uid, block=row.block_number, detail=detail)
                row.state, row.tx_hash, row.uid, row.block_number, row.block_hash = "pending", None, None, None, None
                row.next_attempt_at, row.last_error, row.updated_at = now, detail[:1000], now
                session.add(row)
                review = session.get(ReviewRow, row.review_id, with_for_update=True)
                if review is not None and review.attestation_uid is not None:
                    review.attestation_uid, review.chain_ref, review.attestation_block = None, None, None
                    session.add(review)

    def list_confirmed_since(self, *, block: int) -> Sequence[OutboxItem]:
        with session_scope(self.engine) as session:
            stmt = (
                select(OutboxRow)
                .where(OutboxRow.state == "confirmed", col(OutboxRow.block_number) >= block)
                .order_by(col(OutboxRow.id))
            )
            rows = list(session.exec(stmt))
        return self._items(rows, 0)

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        one = Confirmation(item_id=item_id, uid=uid, tx_hash=tx_hash, block_number=block_number, block_hash=block_hash)
        self.mark_confirmed_many(confirmed=[one], now=now)

    def mark_confirmed_many(self, *, confirmed: Sequence[Confirmation], now: int) -> None:
        with session_scope(self.engine) as session:
            self._confirmed(session, confirmed=confirmed, now=now)

    def _confirmed(self, session: Session, *, confirmed: Sequence[Confirmation], now: int) -> None:
        """The rows (locked) and their reviews read in one query each; the changes flushed together."""
        by_id = {c.item_id: c for c in confirmed}
        changed: dict[str, Confirmation] = {}  # review id → its confirmation
        for row in rows_by_id(session, ids=list(by_id)):
            c = by_id[row.id]  # type: ignore[index]
            if row.state == "confirmed":
                continue
            uid = c.uid.lower()
            row.state, row.uid, row.tx_hash, row.block_number = "confirmed", uid, c.tx_hash, c.block_number
            row.updated_at, row.last_error, row.block_hash = now, None, c.block_hash
            row.chain_ref = self.chain_ref
            _note(row, now, "confirmed", txHash=c.tx_hash, uid=uid, block=c.block_number)
            session.add(row)
            changed[row.review_id] = c
        if changed:
            # in id order, as the write path locks review rows (store.batch.live_reviews_of)
            stmt = select(ReviewRow).where(col(ReviewRow.id).in_(list(changed))).order_by(col(ReviewRow.id))
            for review in session.exec(stmt.with_for_update()):
                c = changed[review.id]
                review.attestation_uid = c.uid.lower()
                review.chain_ref, review.attestation_block = self.chain_ref, c.block_number
                session.add(review)

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        with session_scope(self.engine) as session:
            self._failed(session, item_id=item_id, reason=reason, detail=detail, now=now)

    def _failed(self, session: Session, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        for row in rows_by_id(session, ids=[item_id]):
            if row.state in TERMINAL:
                continue
            row.state, row.last_error, row.updated_at = "failed", f"{reason.value}: {detail}"[:1000], now
            _note(row, now, "failed", detail=f"{reason.value}: {detail}"[:300])
            session.add(row)
            if self.on_failed is not None:
                self.on_failed(session, row.review_id, now)

    def release(self, *, item_ids: Sequence[int], retry_at: int, detail: str, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=item_ids):
                if row.state != "submitted":
                    continue
                _note(row, now, "released", txHash=row.tx_hash, detail=detail[:300])
                row.state, row.tx_hash, row.next_attempt_at = "pending", None, retry_at
                row.last_error, row.updated_at = detail[:1000], now
                session.add(row)


@dataclass
class _SessionClaim:
    """A locked claim (PostgreSQL): the decisions are written in the claiming transaction, committed together."""

    outbox: SqlOutbox
    session: Session
    items: Sequence[OutboxItem]

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        self.outbox._submitted(self.session, item_ids=item_ids, tx_hash=tx_hash, submitted_block=submitted_block,
                               now=now)  # fmt: skip

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        self.outbox._landed(self.session, item_id=item_id, uid=uid, tx_hash=tx_hash, block_number=block_number,
                            block_hash=block_hash, now=now)  # fmt: skip

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        self.outbox._confirmed(self.session, confirmed=[Confirmation(item_id=item_id, uid=uid, tx_hash=tx_hash,
                               block_number=block_number, block_hash=block_hash)], now=now)  # fmt: skip

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        self.outbox._failed(self.session, item_id=item_id, reason=reason, detail=detail, now=now)
