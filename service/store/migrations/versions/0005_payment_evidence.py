"""payment evidence on receipt proofs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:45:00

Adds ``proofs.payment`` (the frozen payment verdict of a receipt proof: status, reason, network, transaction, asset,
payTo, amount, block, confirmations — JSON) and ``proofs.payment_status`` (its status alone, indexed, so the pending
payments to re-check are found without reading JSON). Reviews keep their evidence class in ``reviews.evidence``
(``payment-backed`` fits its 16 characters). Existing rows get NULL: never checked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("payment_status", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_proofs_payment_status", ["payment_status"])


def downgrade() -> None:
    with op.batch_alter_table("proofs", schema=None) as batch_op:
        batch_op.drop_index("ix_proofs_payment_status")
        batch_op.drop_column("payment_status")
        batch_op.drop_column("payment")
