"""Evidence snapshots: the exact DID document / DNS answer bytes an outcome's ``evidence_hash`` refers to."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from service.store.tables import DidSnapshotRow


def remember_snapshot(session: Session, *, snapshot_hash: str, did: str, kind: str, raw: str, now: int) -> None:
    """Store a snapshot once (content-addressed by its hash). Two transactions storing the same snapshot at once
    (reviews of one service by different reviewers) both succeed: INSERT … ON CONFLICT DO NOTHING."""
    values: dict[str, Any] = {
        "snapshot_hash": snapshot_hash, "did": did, "kind": kind, "raw": raw, "first_seen_at": now,
    }  # fmt: skip
    table = DidSnapshotRow.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=["snapshot_hash"]))
    elif dialect == "sqlite":
        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=["snapshot_hash"]))
    elif session.get(DidSnapshotRow, snapshot_hash) is None:
        session.add(DidSnapshotRow(**values))




def latest_snapshot(session: Session, *, did: str, kind: str = "did-document") -> DidSnapshotRow | None:
    """The most recently first-seen snapshot of ``did`` (e.g. the page's fallback when the host is down)."""
    stmt = (
        select(DidSnapshotRow)
        .where(DidSnapshotRow.did == did, DidSnapshotRow.kind == kind)
        .order_by(col(DidSnapshotRow.first_seen_at).desc())
        .limit(1)
    )
    return session.exec(stmt).first()
