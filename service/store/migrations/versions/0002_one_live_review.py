"""one live review per (attester, normalized subject)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 15:20:00

Before the unique index can exist, stores written by earlier versions (whose concurrent submits could leave several
live reviews of one attester about one subject) are repaired: of each such group the latest review (review time,
then creation time, then id) stays live and the others are marked superseded by it. Their receipt claims stay
with them (a claim held by a superseded review is transferable). Run ``omatrust score --recompute`` afterwards when
this repaired anything: the stored aggregates still count the reviews it superseded (reads detect nothing wrong
with them, so it is not automatic).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LIVE = "superseded_by IS NULL"


def _supersede_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, attester, subject_normalized FROM reviews WHERE superseded_by IS NULL "
            "AND (attester, subject_normalized) IN (SELECT attester, subject_normalized FROM reviews "
            "WHERE superseded_by IS NULL GROUP BY attester, subject_normalized HAVING COUNT(*) > 1) "
            "ORDER BY attester, subject_normalized, review_time DESC, created_at DESC, id DESC"
        )
    ).all()
    keep: dict[tuple[str, str], str] = {}
    for rid, attester, subject in rows:
        winner = keep.setdefault((attester, subject), rid)
        if winner != rid:
            conn.execute(sa.text("UPDATE reviews SET superseded_by = :w WHERE id = :id"), {"w": winner, "id": rid})


def upgrade() -> None:
    _supersede_duplicates()
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ux_reviews_live",
            ["attester", "subject_normalized"],
            unique=True,
            sqlite_where=sa.text(_LIVE),
            postgresql_where=sa.text(_LIVE),
        )


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ux_reviews_live")
