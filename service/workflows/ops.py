"""Readiness: can we reach the database and the chain."""

from __future__ import annotations

from dataclasses import dataclass

from service.store.engine import session_scope
from service.store.outbox import count_by_state
from service.workflows.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ReadyState:
    chain_id: int
    block_number: int
    outbox_pending: int


def readiness(*, rt: Runtime) -> ReadyState | None:
    """None when the database or the chain does not answer."""
    try:
        with session_scope(rt.engine) as session:
            pending = count_by_state(session, state="pending")  # also proves the database answers
        head = rt.eas.block_number()
        return ReadyState(chain_id=rt.eas.chain_id, block_number=head, outbox_pending=pending)
    except Exception:  # readiness reports any failure (driver, RPC, ChainUnavailable) as "not ready"
        return None
