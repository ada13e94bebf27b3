"""ERC-8004 agents, feedback and responses

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:20:00

Adds ``erc8004_agents`` (agents seen in feedback and the service DIDs their registration file maps them to, or why
not), ``erc8004_agent_services`` (agent → normalized service DID), ``erc8004_feedback`` (``NewFeedback`` events,
their verification status/reason, self-feedback flag and revocation block) and ``erc8004_responses``
(``ResponseAppended``). Indexed by ``omatrust sync`` under checkpoints named ``erc8004:<chain>:<registry>``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "erc8004_agents",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("agent_id", sa.String(length=78), nullable=False),
        sa.Column("identity_address", sa.String(length=42), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("wallet", sa.String(length=42), nullable=True),
        sa.Column("token_uri", sa.Text(), nullable=False),
        sa.Column("service_dids", sa.JSON(), nullable=False),
        sa.Column("wallets", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "registry_address", "agent_id"),
    )
    op.create_table(
        "erc8004_agent_services",
        sa.Column("did_normalized", sa.String(length=512), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("agent_id", sa.String(length=78), nullable=False),
        sa.PrimaryKeyConstraint("did_normalized", "chain_id", "registry_address", "agent_id"),
    )
    op.create_table(
        "erc8004_feedback",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("agent_id", sa.String(length=78), nullable=False),
        sa.Column("client", sa.String(length=42), nullable=False),
        sa.Column("feedback_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(length=48), nullable=False),
        sa.Column("value_decimals", sa.Integer(), nullable=False),
        sa.Column("tag1", sa.Text(), nullable=False),
        sa.Column("tag2", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("feedback_uri", sa.Text(), nullable=False),
        sa.Column("feedback_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("revoked_block", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("self_feedback", sa.Boolean(), nullable=False),
        sa.Column("payment_network", sa.String(length=64), nullable=True),
        sa.Column("payment_tx", sa.String(length=66), nullable=True),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "registry_address", "agent_id", "client", "feedback_index"),
    )
    op.create_index("ix_erc8004_feedback_agent", "erc8004_feedback", ["chain_id", "registry_address", "agent_id"])
    op.create_index("ix_erc8004_feedback_block", "erc8004_feedback", ["chain_id", "registry_address", "block_number"])
    op.create_table(
        "erc8004_responses",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=78), nullable=False),
        sa.Column("client", sa.String(length=42), nullable=False),
        sa.Column("feedback_index", sa.BigInteger(), nullable=False),
        sa.Column("responder", sa.String(length=42), nullable=False),
        sa.Column("response_uri", sa.Text(), nullable=False),
        sa.Column("response_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "registry_address", "tx_hash", "log_index"),
    )


def downgrade() -> None:
    op.drop_table("erc8004_responses")
    op.drop_index("ix_erc8004_feedback_block", table_name="erc8004_feedback")
    op.drop_index("ix_erc8004_feedback_agent", table_name="erc8004_feedback")
    op.drop_table("erc8004_feedback")
    op.drop_table("erc8004_agent_services")
    op.drop_table("erc8004_agents")
