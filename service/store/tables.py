"""SQLModel tables. Addresses are stored lower-case; subjects both verbatim and normalized.

Times are unix seconds (int) so SQLite and PostgreSQL compare them identically.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class ReviewRow(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_subject_time", "subject_normalized", "review_time", "id"),
        Index("ix_reviews_attester_subject", "attester", "subject_normalized"),
        # The reputation read takes the few newest live reviews of each (evidence, rating) bucket: without this
        # partial index that walks the subject's reviews when a bucket holds only old ones (O(n)).
        Index(
            "ix_reviews_bucket", "subject_normalized", "evidence", "rating_value", "review_time", "id",
            sqlite_where=text("superseded_by IS NULL"), postgresql_where=text("superseded_by IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    subject: str = Field(max_length=256)
    subject_normalized: str = Field(max_length=256)
    did_address: str = Field(max_length=42)
    attester: str = Field(max_length=42)
    version: str = Field(default="", max_length=64)
    rating_value: int
    review_body: str = Field(default="", sa_column=Column(Text, nullable=False))
    screenshot_urls: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proofs_json: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data_hex: str = Field(sa_column=Column(Text, nullable=False))  # the ABI-encoded attestation data
    review_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    source: str = Field(max_length=8)  # "api" | "chain"
    verified_purchase: bool = False
    evidence: str = Field(default="none", max_length=16)  # scoring evidence class
    superseded_by: str | None = Field(default=None, max_length=40)
    attestation_uid: str | None = Field(default=None, max_length=66, unique=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Why a review found on chain never counts as a verified purchase although it is stored (e.g.
    # "recipient-mismatch": its EAS recipient is not the DID Address of its subject). None for normal reviews.
    problem: str | None = Field(default=None, max_length=64)


class ProofRow(SQLModel, table=True):
    """One proof attached to a review, with its frozen outcome."""

    __tablename__ = "proofs"
    __table_args__ = (UniqueConstraint("review_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: str = Field(foreign_key="reviews.id", index=True, max_length=40)
    position: int
    proof_type: str = Field(max_length=64)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=8)
    format: str | None = Field(default=None, max_length=8)
    signature_valid: bool = False
    signer: str | None = Field(default=None, max_length=512)
    tier: str | None = Field(default=None, max_length=16)
    replay_key: str | None = Field(default=None, max_length=66, index=True)
    bound: bool = False  # receipt binding (subject, payer, freshness) held
    issued_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    checked_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    evidence_hash: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class ReceiptClaimRow(SQLModel, table=True):
    """One receipt (by replay key) backs at most one live review."""

    __tablename__ = "receipt_claims"

    replay_key: str = Field(primary_key=True, max_length=66)
    review_id: str = Field(foreign_key="reviews.id", max_length=40)
    attester: str = Field(max_length=42)
    subject_normalized: str = Field(max_length=256)


class OutboxRow(SQLModel, table=True):
    """A publish request. ``content_key`` makes enqueueing idempotent; ``tx_hash`` is written before waiting."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    content_key: str = Field(max_length=66, unique=True)
    review_id: str = Field(foreign_key="reviews.id", max_length=40, index=True)
    attester: str = Field(max_length=42)
    recipient: str = Field(max_length=42)
    data_hex: str = Field(sa_column=Column(Text, nullable=False))
    deadline: int = Field(sa_column=Column(BigInteger, nullable=False))
    nonce: str = Field(max_length=80)  # uint256 as decimal string
    signature: str = Field(max_length=140)
    state: str = Field(default="pending", max_length=16)  # pending | submitted | confirmed | failed
    tx_hash: str | None = Field(default=None, max_length=66, index=True)
    uid: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger))
    submitted_block: int | None = Field(default=None, sa_column=Column(BigInteger))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class DidSnapshotRow(SQLModel, table=True):
    """A DID document (or DNS answer) exactly as fetched: the evidence an outcome refers to by hash."""

    __tablename__ = "did_snapshots"

    snapshot_hash: str = Field(primary_key=True, max_length=64)
    did: str = Field(max_length=512, index=True)
    kind: str = Field(default="did-document", max_length=16)  # did-document | dns-txt
    raw: str = Field(sa_column=Column(Text, nullable=False))
    first_seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class IndexerProgressRow(SQLModel, table=True):
    __tablename__ = "indexer_progress"

    name: str = Field(primary_key=True, max_length=64)
    last_block: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class OutcomeHistoryRow(SQLModel, table=True):
    """Every change of a stored proof outcome (re-verification), before and after."""

    __tablename__ = "outcome_history"

    id: int | None = Field(default=None, primary_key=True)
    proof_id: int = Field(foreign_key="proofs.id", index=True)
    review_id: str = Field(max_length=40, index=True)
    before_status: str = Field(max_length=16)
    after_status: str = Field(max_length=16)
    before_reason: str | None = Field(default=None, max_length=64)
    after_reason: str | None = Field(default=None, max_length=64)
    run_id: str = Field(max_length=40)
    changed_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class SubjectAggregateRow(SQLModel, table=True):
    """Per-subject score aggregate, maintained on write (see service.scoring)."""

    __tablename__ = "subject_aggregates"

    subject_normalized: str = Field(primary_key=True, max_length=256)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    review_count: int = 0
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


ALL_TABLES = (
    ReviewRow,
    ProofRow,
    ReceiptClaimRow,
    OutboxRow,
    DidSnapshotRow,
    IndexerProgressRow,
    OutcomeHistoryRow,
    SubjectAggregateRow,
)


class ReverifyRunRow(SQLModel, table=True):
    """One ``omatrust reverify`` run: what it selects, how far it got (the key of the last review of the last
    committed chunk, in (subject_normalized, review_time, id) order) and its running tallies. ``--resume``
    continues a run whose ``state`` is still ``running``."""

    __tablename__ = "reverify_runs"

    run_id: str = Field(primary_key=True, max_length=40)
    selection: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="running", max_length=16, index=True)  # running | done
    last_subject: str | None = Field(default=None, max_length=256)
    last_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_review_id: str | None = Field(default=None, max_length=40)
    reviews_checked: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    tallies: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class ReverifyAttemptRow(SQLModel, table=True):
    """A re-check that could not be completed (a look-up failed): the stored verdict was kept, the try is noted."""

    __tablename__ = "reverify_attempts"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=40, index=True)
    proof_id: int = Field(foreign_key="proofs.id", index=True)
    review_id: str = Field(max_length=40)
    kept_status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    attempted_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ChainRejectRow(SQLModel, table=True):
    """A User Review attestation on chain that cannot be stored as a review (undecodable data, or a field breaking
    the schema rules, e.g. a rating of 7). Kept so that sync stays idempotent and operators can audit it."""

    __tablename__ = "chain_rejects"

    uid: str = Field(primary_key=True, max_length=66)
    attester: str = Field(max_length=42)
    recipient: str = Field(max_length=42)
    attestation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))
