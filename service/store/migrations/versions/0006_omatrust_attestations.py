"""OMATrust attestations besides User Reviews; wider proof tiers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:10:00

Adds ``omatrust_attestations`` (Key Binding, Controller Witness, Linked Identifier and User Review Response
attestations indexed from chain, their revocation time, and a status/reason) and widens ``proofs.tier`` to 32
characters for the ``controller-witness`` tier.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "omatrust_attestations",
        sa.Column("uid", sa.String(length=66), nullable=False),
        sa.Column("schema_uid", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("attester", sa.String(length=42), nullable=False),
        sa.Column("recipient", sa.String(length=42), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("subject_key", sa.String(length=512), nullable=False),
        sa.Column("ref_uid", sa.String(length=66), nullable=False),
        sa.Column("attestation_time", sa.BigInteger(), nullable=False),
        sa.Column("revocation_time", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    op.create_index("ix_omatrust_attestations_subject", "omatrust_attestations", ["kind", "subject_key"])
    op.create_index("ix_omatrust_attestations_ref", "omatrust_attestations", ["ref_uid"])
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        batch_op.alter_column("tier", existing_type=sa.String(length=16), type_=sa.String(length=32))


def downgrade() -> None:
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        batch_op.alter_column("tier", existing_type=sa.String(length=32), type_=sa.String(length=16))
    op.drop_index("ix_omatrust_attestations_ref", table_name="omatrust_attestations")
    op.drop_index("ix_omatrust_attestations_subject", table_name="omatrust_attestations")
    op.drop_table("omatrust_attestations")
