"""Enqueue Procrastinate jobs from inside a store transaction (PostgreSQL), so a job exists exactly when the rows it
acts on were committed.

Procrastinate's own ``defer`` opens its own connection; this writes the same row (``procrastinate_jobs``, created by
migration 0004 from Procrastinate's schema) through the caller's session instead. The insert is ``ON CONFLICT DO
NOTHING``: a job with the same ``queueing_lock`` still waiting (``todo``) already covers the new rows. The insert
trigger of that schema notifies the listening workers at commit.

Task names and queues are shared with ``service.jobs`` (which registers the tasks) through the constants below.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import Session

# The worker registers its tasks under this namespace (Procrastinate names them "<namespace>:<task>").
NAMESPACE = "omatrust"
PUBLISH_TASK = f"{NAMESPACE}:publish"
PUBLISH_QUEUE = "publish"
SYNC_TASK = f"{NAMESPACE}:sync"
SYNC_QUEUE = "sync"
REVERIFY_TASK = f"{NAMESPACE}:reverify_partition"
REVERIFY_QUEUE = "reverify"

_INSERT = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "VALUES (:queue, :task, :priority, :lock, :queueing_lock, CAST(:args AS jsonb)) ON CONFLICT DO NOTHING"
)


def publish_lock(relayer: str) -> str:
    """The job lock of a relayer key: at most one publish job per key runs, in any process."""
    return f"publish:{relayer.lower()}"


def defer(
    conn: Session | Connection,
    *,
    task: str,
    queue: str,
    args: dict[str, Any],
    lock: str | None = None,
    queueing_lock: str | None = None,
    priority: int = 0,
) -> None:
    """Insert one ``todo`` job in the caller's transaction (no-op when a ``todo`` job holds ``queueing_lock``).
    PostgreSQL only (the caller checks the dialect)."""
    params = {"queue": queue, "task": task, "priority": priority, "lock": lock, "queueing_lock": queueing_lock}
    bare = conn.connection() if isinstance(conn, Session) else conn  # a plain statement: skip the ORM's execute
    bare.execute(_INSERT, {**params, "args": json.dumps(args, sort_keys=True)})


def defer_batch(conn: Session | Connection, *, task: str, queue: str, args: list[dict[str, Any]]) -> list[int]:
    """Insert one ``todo`` job per ``args`` item (no locks) in the caller's transaction; returns their ids in order."""
    ids = []
    for item in args:
        row = conn.execute(
            text(str(_INSERT).replace(" ON CONFLICT DO NOTHING", " RETURNING id")),
            {"queue": queue, "task": task, "priority": 0, "lock": None, "queueing_lock": None,
             "args": json.dumps(item, sort_keys=True)},
        ).one()  # fmt: skip
        ids.append(int(row[0]))
    return ids


def job_states(conn: Session | Connection, *, ids: list[int]) -> dict[int, str]:
    """Status of each job still in the table (a finished job may have been deleted by its worker)."""
    rows = conn.execute(text("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(:ids)"), {"ids": ids})
    return {int(i): str(s) for i, s in rows}


def defer_publish(conn: Session | Connection, *, relayer: str) -> None:
    """Wake the publisher of ``relayer`` (checksummed or lower-case address) once the transaction commits."""
    lock = publish_lock(relayer)
    defer(conn, task=PUBLISH_TASK, queue=PUBLISH_QUEUE, args={"relayer": relayer.lower()}, lock=lock,
          queueing_lock=lock)  # fmt: skip


def relayer_slot(*, attester: str, relayers: int) -> int:
    """Which of ``relayers`` keys publishes this attester's requests: by its last hex digit, so every request of
    one attester goes through one key, in EAS-nonce order."""
    return int(attester[-1], 16) % relayers if relayers > 1 else 0


def slot_digits(*, slot: int, relayers: int) -> tuple[str, ...] | None:
    """The last hex digits of the attesters a slot publishes for (None: all, one key)."""
    if relayers <= 1:
        return None
    return tuple(d for d in "0123456789abcdef" if int(d, 16) % relayers == slot)
