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
        # One live review per (attester, normalized subject), whatever path wrote it (migration 0002).
        Index(
            "ux_reviews_live", "attester", "subject_normalized", unique=True,
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
    # Chain identity of the attestation (chains.id) and the block it is in (migration 0003; see docs/chain.md).
    chain_ref: int | None = Field(default=None, foreign_key="chains.id")
    attestation_block: int | None = Field(default=None, sa_column=Column(BigInteger))


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
    tier: str | None = Field(default=None, max_length=32)  # 32: "controller-witness" (migration 0006)
    replay_key: str | None = Field(default=None, max_length=66, index=True)
    bound: bool = False  # receipt binding (subject, payer, freshness) held
    issued_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    checked_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    evidence_hash: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    # Receipt proofs naming a transaction: the payment verdict (PaymentCheck.to_json) and its status (migration 0005).
    payment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    payment_status: str | None = Field(default=None, max_length=16, index=True)


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
    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_attester", "attester"),  # migration 0004: the next nonce of an attester, on every submit
    )

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
    # Chain identity (chains.id) the item is published on, the hash of the block that carried it (reorg checks),
    # and its publishing history: [{"at", "event", "txHash"?, "uid"?, "block"?, "detail"?}] (migration 0003).
    chain_ref: int | None = Field(default=None, foreign_key="chains.id")
    block_hash: str | None = Field(default=None, max_length=66)
    history: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


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
    chain_ref: int | None = Field(default=None, foreign_key="chains.id")  # migration 0003
    block_hash: str | None = Field(default=None, max_length=66)  # hash of ``last_block`` when it was stored


class ChainRow(SQLModel, table=True):
    """One chain identity the store refers to: chain id, genesis block hash, EAS address (migration 0003)."""

    __tablename__ = "chains"
    __table_args__ = (UniqueConstraint("chain_id", "genesis_hash", "eas_address"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    genesis_hash: str = Field(max_length=66)
    eas_address: str = Field(max_length=42)
    first_seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class IndexedBlockRow(SQLModel, table=True):
    """Hashes of the recent blocks an indexer has read (``name`` as in indexer_progress): a reorg shows as a stored
    hash the chain no longer has at that height (migration 0003)."""

    __tablename__ = "indexer_blocks"

    name: str = Field(primary_key=True, max_length=64)
    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    block_hash: str = Field(max_length=66)


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


class OmatrustAttestationRow(SQLModel, table=True):
    """An OMATrust attestation other than a User Review (Key Binding, Controller Witness, Linked Identifier, User
    Review Response), indexed from chain under an anchored schema UID (current or prior). ``status``: ``valid``,
    ``rejected`` (undecodable: ``reason`` says why) or, for responses, ``authorized`` / ``unauthorized``.
    ``revocation_time`` is kept up to date from ``Revoked`` events (0: not revoked)."""

    __tablename__ = "omatrust_attestations"
    __table_args__ = (
        Index("ix_omatrust_attestations_subject", "kind", "subject_key"),
        Index("ix_omatrust_attestations_ref", "ref_uid"),
    )

    uid: str = Field(primary_key=True, max_length=66)
    schema_uid: str = Field(max_length=66)
    kind: str = Field(max_length=32)
    attester: str = Field(max_length=42)
    recipient: str = Field(max_length=42)
    subject: str = Field(default="", max_length=512)
    subject_key: str = Field(default="", max_length=512)
    ref_uid: str = Field(default="", max_length=66)
    attestation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    revocation_time: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(default="", max_length=66)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- ERC-8004 (migration 0007): agents, their on-chain feedback, responses (service.workflows.erc8004_sync) -------
class Erc8004AgentRow(SQLModel, table=True):
    """An agent of an Identity Registry seen in feedback, and what its registration file maps it to. ``status``
    ``mapped`` (``service_dids`` non-empty) or ``unmapped`` with a ``reason`` — kept and reported, never dropped."""

    __tablename__ = "erc8004_agents"

    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    registry_address: str = Field(primary_key=True, max_length=42)  # identity registry, lower-case
    agent_id: str = Field(primary_key=True, max_length=78)  # uint256 as decimal text
    identity_address: str = Field(default="", max_length=42)  # its Identity Registry (the agentRegistry address)
    owner: str | None = Field(default=None, max_length=42)
    wallet: str | None = Field(default=None, max_length=42)
    token_uri: str = Field(default="", sa_column=Column(Text, nullable=False))
    service_dids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    wallets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    checked_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Erc8004ServiceRow(SQLModel, table=True):
    """Agent → service DID (normalized), one row per mapping: the reputation read finds a service's agents here."""

    __tablename__ = "erc8004_agent_services"

    did_normalized: str = Field(primary_key=True, max_length=512)
    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    registry_address: str = Field(primary_key=True, max_length=42)
    agent_id: str = Field(primary_key=True, max_length=78)


class Erc8004FeedbackRow(SQLModel, table=True):
    """One ``NewFeedback`` (``registry`` = the Reputation Registry), its verification and its revocation."""

    __tablename__ = "erc8004_feedback"
    __table_args__ = (
        Index("ix_erc8004_feedback_agent", "chain_id", "registry_address", "agent_id"),
        Index("ix_erc8004_feedback_block", "chain_id", "registry_address", "block_number"),
    )

    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    registry_address: str = Field(primary_key=True, max_length=42)
    agent_id: str = Field(primary_key=True, max_length=78)
    client: str = Field(primary_key=True, max_length=42)
    feedback_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    value: str = Field(max_length=48)  # int128 as decimal text
    value_decimals: int
    tag1: str = Field(default="", sa_column=Column(Text, nullable=False))
    tag2: str = Field(default="", sa_column=Column(Text, nullable=False))
    endpoint: str = Field(default="", sa_column=Column(Text, nullable=False))
    feedback_uri: str = Field(default="", sa_column=Column(Text, nullable=False))
    feedback_hash: str = Field(max_length=66)
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    tx_hash: str = Field(max_length=66)
    log_index: int
    revoked_block: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    self_feedback: bool = False
    payment_network: str | None = Field(default=None, max_length=64)
    payment_tx: str | None = Field(default=None, max_length=66)
    seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Erc8004ResponseRow(SQLModel, table=True):
    """One ``ResponseAppended`` (kept for audit; not part of any score)."""

    __tablename__ = "erc8004_responses"

    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    registry_address: str = Field(primary_key=True, max_length=42)
    tx_hash: str = Field(primary_key=True, max_length=66)
    log_index: int = Field(primary_key=True)
    agent_id: str = Field(max_length=78)
    client: str = Field(max_length=42)
    feedback_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    responder: str = Field(max_length=42)
    response_uri: str = Field(default="", sa_column=Column(Text, nullable=False))
    response_hash: str = Field(max_length=66)
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
