"""chain identity on attestations, outbox and sync checkpoint; block hashes for reorgs; publish history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 15:40:00

Adds ``chains`` (chain id, genesis block hash, EAS address) and a ``chain_ref`` to reviews, outbox rows and indexer
checkpoints; the block of each attestation (``reviews.attestation_block``), the block hash of a published outbox item
and of a checkpoint, the recent block hashes an indexer has read (``indexer_blocks``), and the outbox history.
Rows written before this revision keep ``chain_ref`` NULL: the service claims them for the configured chain at start
only when their UIDs are found on it (service.workflows.chain_identity).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("genesis_hash", sa.String(length=66), nullable=False),
        sa.Column("eas_address", sa.String(length=42), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "genesis_hash", "eas_address"),
    )
    op.create_table(
        "indexer_blocks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("name", "block_number"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_ref", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attestation_block", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key("fk_reviews_chain_ref", "chains", ["chain_ref"], ["id"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_ref", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("block_hash", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=True))
        batch_op.create_foreign_key("fk_outbox_chain_ref", "chains", ["chain_ref"], ["id"])
    with op.batch_alter_table("indexer_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_ref", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("block_hash", sa.String(length=66), nullable=True))
        batch_op.create_foreign_key("fk_indexer_progress_chain_ref", "chains", ["chain_ref"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("indexer_progress", schema=None) as batch_op:
        batch_op.drop_constraint("fk_indexer_progress_chain_ref", type_="foreignkey")
        batch_op.drop_column("block_hash")
        batch_op.drop_column("chain_ref")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_chain_ref", type_="foreignkey")
        batch_op.drop_column("history")
        batch_op.drop_column("block_hash")
        batch_op.drop_column("chain_ref")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_constraint("fk_reviews_chain_ref", type_="foreignkey")
        batch_op.drop_column("attestation_block")
        batch_op.drop_column("chain_ref")
    op.drop_table("indexer_blocks")
    op.drop_table("chains")
