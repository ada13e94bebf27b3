"""``OutboxRepository`` (service.chain.outbox) over SQL. Every method commits before it returns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from service.chain.outbox import OutboxItem
from service.chain.publisher import DelegatedRequest
from service.domain import Reason
from service.errors import MalformedInput
from service.store.engine import session_scope
from service.store.outbox import TERMINAL, in_state, pending_due, rows_by_id, set_review_uid
from service.store.tables import OutboxRow


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
        id=row.id, request=request, attempts=row.attempts, tx_hash=row.tx_hash, submitted_block=row.submitted_block
    )


class SqlOutbox:
    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    def _items(self, rows: list[OutboxRow], now: int) -> list[OutboxItem]:
        items, broken = [], []
        for row in rows:
            try:
                items.append(_item(row))
            except MalformedInput as exc:
                broken.append((row.id, exc.detail))
        for item_id, detail in broken:
            assert item_id is not None
            self.mark_failed(item_id=item_id, reason=Reason.ATTESTATION_DATA_INVALID, detail=detail, now=now)
        return items

    def claim_pending(self, *, limit: int, now: int) -> Sequence[OutboxItem]:
        with session_scope(self.engine) as session:
            rows = pending_due(session, limit=limit, now=now)
        return self._items(rows, now)

    def list_submitted(self) -> Sequence[OutboxItem]:
        with session_scope(self.engine) as session:
            rows = in_state(session, state="submitted")
        return self._items(rows, 0)

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=item_ids):
                if row.state != "pending":
                    continue
                row.state, row.tx_hash, row.attempts, row.updated_at = "submitted", tx_hash, row.attempts + 1, now
                if row.submitted_block is None:
                    row.submitted_block = submitted_block
                session.add(row)

    def mark_confirmed(self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=[item_id]):
                if row.state == "confirmed":
                    continue
                row.state, row.uid, row.tx_hash, row.block_number = "confirmed", uid.lower(), tx_hash, block_number
                row.updated_at, row.last_error = now, None
                session.add(row)
                set_review_uid(session, review_id=row.review_id, uid=uid.lower())

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=[item_id]):
                if row.state in TERMINAL:
                    continue
                row.state, row.last_error, row.updated_at = "failed", f"{reason.value}: {detail}"[:1000], now
                session.add(row)

    def release(self, *, item_ids: Sequence[int], retry_at: int, detail: str, now: int) -> None:
        with session_scope(self.engine) as session:
            for row in rows_by_id(session, ids=item_ids):
                if row.state != "submitted":
                    continue
                row.state, row.tx_hash, row.next_attempt_at = "pending", None, retry_at
                row.last_error, row.updated_at = detail[:1000], now
                session.add(row)
