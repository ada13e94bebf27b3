"""task queue: Procrastinate's schema (PostgreSQL) and the outbox index by attester

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 15:50:00

On PostgreSQL this creates the tables, types, functions and triggers of Procrastinate (the task queue the workers
run on, pinned ``procrastinate==3.10.0``), exactly as that version ships them (``SchemaManager.get_schema()``), so
``omatrust db upgrade`` is the only schema step of a deployment. SQLite has no task queue (jobs run in process):
nothing is created there. Upgrading Procrastinate later means adding a migration with its own migration scripts.

Both databases get ``ix_outbox_attester``: the submit path looks up an attester's requests in the outbox (next
nonce) on every submission.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_attester", ["attester"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # Several statements with $$-quoted function bodies in one query; '%' doubled as the driver reads placeholders
    # (what Procrastinate's own SchemaManager.apply_schema does).
    op.get_bind().exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("procrastinate_periodic_defers", "procrastinate_events", "procrastinate_jobs",
                     "procrastinate_workers"):  # fmt: skip
            op.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        op.execute("DROP TYPE IF EXISTS procrastinate_job_to_defer_v1 CASCADE")
        op.execute("DROP TYPE IF EXISTS procrastinate_job_event_type CASCADE")
        op.execute("DROP TYPE IF EXISTS procrastinate_job_status CASCADE")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_attester")
