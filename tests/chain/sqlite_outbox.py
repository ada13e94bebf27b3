"""A SQL implementation of ``OutboxRepository`` on stdlib sqlite3 — proves the Protocol is implementable in SQL
with the documented semantics, and survives a killed process (crash tests run the publisher in a subprocess)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from service.chain.delegation import DelegatedRequest
from service.chain.outbox import Confirmation, OutboxItem
from service.domain import Reason

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  content_key TEXT NOT NULL UNIQUE,
  attester TEXT NOT NULL, recipient TEXT NOT NULL, data_hex TEXT NOT NULL,
  deadline INTEGER NOT NULL, nonce TEXT NOT NULL, signature TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  tx_hash TEXT, submitted_block INTEGER, uid TEXT, block_number INTEGER, block_hash TEXT,
  reorgs INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_attempt_at INTEGER NOT NULL DEFAULT 0
)
"""


class SqliteOutbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)  # autocommit: every write is durable
        db.row_factory = sqlite3.Row
        return db

    def enqueue(self, *, request: DelegatedRequest, key: str) -> int:
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox (content_key, attester, recipient, data_hex, deadline, nonce, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, request.attester, request.recipient, request.data.hex(), request.deadline, str(request.nonce),
                 request.signature.hex()),
            )
            return int(db.execute("SELECT id FROM outbox WHERE content_key = ?", (key,)).fetchone()[0])

    def row(self, item_id: int) -> sqlite3.Row:
        with self._db() as db:
            return db.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()

    @staticmethod
    def _item(row: sqlite3.Row) -> OutboxItem:
        request = DelegatedRequest(
            attester=row["attester"], data=bytes.fromhex(row["data_hex"]), recipient=row["recipient"],
            deadline=row["deadline"], nonce=int(row["nonce"]), signature=bytes.fromhex(row["signature"]),
        )
        return OutboxItem(row["id"], request, row["attempts"], row["tx_hash"], row["submitted_block"], row["uid"],
                          row["block_number"], row["block_hash"], row["reorgs"])

    def claim_pending(self, *, limit: int, now: int) -> Sequence[OutboxItem]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [self._item(r) for r in rows]

    def mark_submitted(self, *, item_ids: Sequence[int], tx_hash: str, submitted_block: int, now: int) -> None:
        with self._db() as db:
            db.executemany(
                "UPDATE outbox SET state = 'submitted', tx_hash = ?, attempts = attempts + 1,"
                " submitted_block = COALESCE(submitted_block, ?) WHERE id = ? AND state = 'pending'",
                [(tx_hash, submitted_block, i) for i in item_ids],
            )

    def mark_landed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, block_hash: str, now: int
    ) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET uid = ?, tx_hash = ?, block_number = ?, block_hash = ?"
                " WHERE id = ? AND state = 'submitted'",
                (uid, tx_hash, block_number, block_hash, item_id),
            )

    def mark_confirmed(
        self, *, item_id: int, uid: str, tx_hash: str, block_number: int, now: int, block_hash: str | None = None
    ) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET state = 'confirmed', uid = ?, tx_hash = ?, block_number = ?, block_hash = ?"
                " WHERE id = ? AND state != 'confirmed'",
                (uid, tx_hash, block_number, block_hash, item_id),
            )

    def mark_confirmed_many(self, *, confirmed: Sequence[Confirmation], now: int) -> None:
        for c in confirmed:
            self.mark_confirmed(item_id=c.item_id, uid=c.uid, tx_hash=c.tx_hash, block_number=c.block_number, now=now,
                                block_hash=c.block_hash)  # fmt: skip

    def mark_reorged(self, *, item_id: int, detail: str, now: int) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', tx_hash = NULL, uid = NULL, block_number = NULL,"
                " block_hash = NULL, reorgs = reorgs + 1, next_attempt_at = ?, last_error = ?"
                " WHERE id = ? AND state IN ('submitted', 'confirmed')",
                (now, detail, item_id),
            )

    def list_confirmed_since(self, *, block: int) -> Sequence[OutboxItem]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM outbox WHERE state = 'confirmed' AND block_number >= ? ORDER BY id", (block,)
            ).fetchall()
        return [self._item(r) for r in rows]

    def mark_failed(self, *, item_id: int, reason: Reason, detail: str, now: int) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ? AND state IN ('pending', 'submitted')",
                (f"{reason.value}: {detail}", item_id),
            )

    def release(self, *, item_ids: Sequence[int], retry_at: int, detail: str, now: int) -> None:
        with self._db() as db:
            db.executemany(
                "UPDATE outbox SET state = 'pending', tx_hash = NULL, next_attempt_at = ?, last_error = ?"
                " WHERE id = ? AND state = 'submitted'",
                [(retry_at, detail, i) for i in item_ids],
            )

    def list_submitted(self) -> Sequence[OutboxItem]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM outbox WHERE state = 'submitted' ORDER BY id").fetchall()
        return [self._item(r) for r in rows]
