"""Per-item isolation for the chain indexers: one chain-sourced item (an attestation, an ERC-8004 event) is judged,
never allowed to abort the run. Whatever judging or storing it raises becomes a stored reject with the reason, and
the chunk — and its checkpoint — carries on. Used by ``sync`` (User Reviews), ``omatrust_sync`` and
``erc8004_sync`` so the three indexers share one rule.

What still aborts a chunk (so it is retried or resumed whole, never half-stored): a unique-key collision (a
concurrent run stored the same item), a lost database connection, and the exceptions a caller lists as
``passthrough`` (an RPC failure: retrying can help, so the item must not be judged on it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session

log = logging.getLogger("omatrust.sync")
T = TypeVar("T")
# Failures of the database or of the run, not of one item: the whole chunk is rolled back and retried.
CHUNK_FAILURES: tuple[type[Exception], ...] = (IntegrityError, OperationalError, InterfaceError)


def judge_isolated(
    *, judge: Callable[[], T], reject: Callable[[Exception], T], what: str,
    passthrough: tuple[type[Exception], ...] = (),
) -> T:  # fmt: skip
    """``judge()``, or ``reject(exc)`` when it raises anything but ``passthrough``.

    Raises:
        passthrough: re-raised as is; and whatever ``reject`` raises.
    """
    try:
        return judge()
    except passthrough:
        raise
    except Exception as exc:
        log.warning("sync: judging %s raised; stored as a reject", what, exc_info=True)
        return reject(exc)


def store_isolated(
    session: Session, *, store: Callable[[], None], reject: Callable[[Exception], None], what: str,
    undo: Callable[[], None] | None = None,
) -> bool:  # fmt: skip
    """``store()`` inside a savepoint; if it raises (a value the database refuses, a bug), the savepoint is rolled
    back, ``undo()`` drops any in-memory effect, and ``reject(exc)`` is stored in a savepoint of its own instead.
    Returns True when ``store()`` succeeded. The session must already be in a transaction (write something first:
    pysqlite only begins before DML).

    Raises:
        IntegrityError, OperationalError, InterfaceError: the chunk must be rolled back and retried.
        whatever ``reject`` raises.
    """
    try:
        with session.begin_nested():
            store()
        return True
    except CHUNK_FAILURES:
        raise
    except Exception as exc:
        if undo is not None:
            undo()
        log.warning("sync: storing %s failed; stored as a reject", what, exc_info=True)
        with session.begin_nested():
            reject(exc)
        return False
