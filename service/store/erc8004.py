"""Rows of the ERC-8004 bridge (tables ``erc8004_*``, migration 0007). ``registry`` arguments are the lower-case
Reputation Registry address: one indexing unit is (chain, Reputation Registry), whose Identity Registry is configured
with it, so agents are keyed by it too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from service.store.tables import Erc8004AgentRow, Erc8004FeedbackRow, Erc8004ResponseRow, Erc8004ServiceRow


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def agent_row(session: Session, *, chain_id: int, registry: str, agent_id: int) -> Erc8004AgentRow | None:
    return session.get(Erc8004AgentRow, (chain_id, registry, str(agent_id)))


def save_agent(session: Session, *, row: Erc8004AgentRow) -> None:
    """Insert or replace an agent and its service mappings."""
    key = (row.chain_id, row.registry_address, row.agent_id)
    session.merge(row)
    session.execute(
        delete(Erc8004ServiceRow).where(
            col(Erc8004ServiceRow.chain_id) == key[0],
            col(Erc8004ServiceRow.registry_address) == key[1],
            col(Erc8004ServiceRow.agent_id) == key[2],
        )
    )
    for did in sorted(set(row.service_dids)):
        session.add(Erc8004ServiceRow(did_normalized=did, chain_id=key[0], registry_address=key[1], agent_id=key[2]))


def known_feedback(
    session: Session, *, chain_id: int, registry: str, agent_ids: Iterable[int]
) -> set[tuple[str, str, int]]:
    """(agent id, client, index) of stored feedback of these agents."""
    ids = sorted({str(a) for a in agent_ids})
    if not ids:
        return set()
    stmt = select(
        col(Erc8004FeedbackRow.agent_id), col(Erc8004FeedbackRow.client), col(Erc8004FeedbackRow.feedback_index)
    ).where(
        col(Erc8004FeedbackRow.chain_id) == chain_id,
        col(Erc8004FeedbackRow.registry_address) == registry,
        col(Erc8004FeedbackRow.agent_id).in_(ids),
    )
    return {(str(a), str(c), int(i)) for a, c, i in session.execute(stmt)}


def mark_revoked(
    session: Session, *, chain_id: int, registry: str, agent_id: int, client: str, index: int, block: int
) -> bool:
    """Record the revocation block of a stored, not yet revoked feedback; False when there is none."""
    row = session.get(Erc8004FeedbackRow, (chain_id, registry, str(agent_id), client, index))
    if row is None or row.revoked_block is not None:
        return False
    row.revoked_block = block
    session.add(row)
    return True


def add_response(session: Session, *, row: Erc8004ResponseRow) -> None:
    if session.get(Erc8004ResponseRow, (row.chain_id, row.registry_address, row.tx_hash, row.log_index)) is None:
        session.add(row)


def undo_after(session: Session, *, chain_id: int, registry: str, block: int) -> tuple[int, int, int]:
    """Undo what blocks above ``block`` brought (a reorg): (feedback deleted, revocations undone, responses deleted)."""
    fb, resp = Erc8004FeedbackRow, Erc8004ResponseRow
    unit = (col(fb.chain_id) == chain_id, col(fb.registry_address) == registry)
    deleted = _count(session.execute(delete(fb).where(*unit, col(fb.block_number) > block)))
    unrevoked = _count(
        session.execute(update(fb).where(*unit, col(fb.revoked_block) > block).values(revoked_block=None))
    )
    responses = _count(
        session.execute(
            delete(resp).where(
                col(resp.chain_id) == chain_id, col(resp.registry_address) == registry, col(resp.block_number) > block
            )
        )
    )
    return deleted, unrevoked, responses


def open_feedback(
    session: Session, *, chain_id: int, registry: str, reasons: Iterable[str], limit: int
) -> list[Erc8004FeedbackRow]:
    """Live unverified feedback whose reason is one of ``reasons``, oldest first (at most ``limit``)."""
    fb = Erc8004FeedbackRow
    stmt = (
        select(fb)
        .where(
            col(fb.chain_id) == chain_id,
            col(fb.registry_address) == registry,
            col(fb.status) == "unverified",
            col(fb.reason).in_(sorted(reasons)),
            col(fb.revoked_block).is_(None),
        )
        .order_by(col(fb.block_number), col(fb.log_index))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def settle_feedback(session: Session, *, checked: Erc8004FeedbackRow, old_reason: str | None) -> bool:
    """Store a re-check's verdict on the stored row — only if that row is still the same feedback (same block hash:
    no reorg in between) with the verdict the re-check started from. False when it changed meanwhile."""
    key = (checked.chain_id, checked.registry_address, checked.agent_id, checked.client, checked.feedback_index)
    row = session.get(Erc8004FeedbackRow, key)
    if row is None or row.block_hash != checked.block_hash or (row.status, row.reason) != ("unverified", old_reason):
        return False
    row.status, row.reason, row.detail = checked.status, checked.reason, checked.detail
    row.payment_network, row.payment_tx = checked.payment_network, checked.payment_tx
    session.add(row)
    return True


def feedback_of_agents(session: Session, *, agents: Sequence[tuple[int, str, str]]) -> list[Erc8004FeedbackRow]:
    """All stored feedback (revoked included) of these (chain id, registry, agent id)."""
    out: list[Erc8004FeedbackRow] = []
    for chain_id, registry, agent_id in agents:
        stmt = select(Erc8004FeedbackRow).where(
            col(Erc8004FeedbackRow.chain_id) == chain_id,
            col(Erc8004FeedbackRow.registry_address) == registry,
            col(Erc8004FeedbackRow.agent_id) == agent_id,
        )
        out.extend(session.execute(stmt).scalars())
    return out


def agents_of_service(session: Session, *, did_normalized: str) -> list[tuple[int, str, str]]:
    stmt = select(
        col(Erc8004ServiceRow.chain_id), col(Erc8004ServiceRow.registry_address), col(Erc8004ServiceRow.agent_id)
    ).where(col(Erc8004ServiceRow.did_normalized) == did_normalized)
    return [(int(c), str(r), str(a)) for c, r, a in session.execute(stmt)]


def unmapped_agents(session: Session) -> list[Erc8004AgentRow]:
    stmt = select(Erc8004AgentRow).where(col(Erc8004AgentRow.status) != "mapped")
    return list(session.execute(stmt).scalars())
