"""One in-process publisher per relayer key across processes on PostgreSQL, without workers.

Several ``omatrust serve`` processes started with their own publishers (the default) on one PostgreSQL database
would each publish with the same relayer key and race for its transaction nonce (wasted, reverted transactions).
Each publish round therefore runs under a PostgreSQL advisory lock named after the relayer address: a process
whose round finds the lock taken skips that round. The relayer nonce is re-read at the start of every round it
does run, since another process may have sent transactions since. (With workers, the Procrastinate job lock does
the same job; see docs/deploy.md.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.chain.eas_relayer import EasClient
from service.chain.publisher import Publisher, PublishReport


def advisory_key(relayer: str) -> int:
    """A stable signed 64-bit advisory-lock key for a relayer address."""
    digest = hashlib.sha256(f"omatrust:publish:{relayer.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def exclusive_rounds(*, publisher: Publisher, engine: Engine, client: EasClient) -> None:
    """Make ``publisher.run_once`` run only while holding the relayer's advisory lock (PostgreSQL only)."""
    if engine.dialect.name != "postgresql" or client.relayer is None:
        return
    key = advisory_key(client.relayer.address)
    round_once: Callable[[], PublishReport] = publisher.run_once

    def guarded() -> PublishReport:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.rollback()
                return PublishReport()  # another process is publishing with this key right now
            conn.commit()
            try:
                client.resync_nonce()
                return round_once()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    publisher.run_once = guarded  # type: ignore[method-assign]
