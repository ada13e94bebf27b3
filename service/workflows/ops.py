"""Readiness: can we reach the database and the chain."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from service.errors import OmaTrustError
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
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            pending = count_by_state(session, state="pending")
        head = rt.eas.block_number()
        return ReadyState(chain_id=rt.eas.chain_id, block_number=head, outbox_pending=pending)
    except (OmaTrustError, OSError, Exception):
        return None
