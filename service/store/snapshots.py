"""Evidence snapshots: the exact DID document / DNS answer bytes an outcome's ``evidence_hash`` refers to."""

from __future__ import annotations

from sqlmodel import Session

from service.store.tables import DidSnapshotRow


def remember_snapshot(session: Session, *, snapshot_hash: str, did: str, kind: str, raw: str, now: int) -> None:
    """Store a snapshot once (content-addressed by its hash)."""
    if session.get(DidSnapshotRow, snapshot_hash) is None:
        session.add(DidSnapshotRow(snapshot_hash=snapshot_hash, did=did, kind=kind, raw=raw, first_seen_at=now))


def get_snapshot(session: Session, *, snapshot_hash: str) -> DidSnapshotRow | None:
    return session.get(DidSnapshotRow, snapshot_hash)
