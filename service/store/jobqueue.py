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

from sqlalchemy import BigInteger, Integer, Text, bindparam, cast, column, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session

from service.store.batch import Rider

# The worker registers its tasks under this namespace (Procrastinate names them "<namespace>:<task>").
NAMESPACE = "omatrust"
PUBLISH_TASK = f"{NAMESPACE}:publish"
PUBLISH_QUEUE = "publish"
SYNC_TASK = f"{NAMESPACE}:sync"
SYNC_QUEUE = "sync"
REVERIFY_TASK = f"{NAMESPACE}:reverify_partition"
REVERIFY_QUEUE = "reverify"

_JOBS = table(
    "procrastinate_jobs", column("id", BigInteger), column("queue_name", Text), column("task_name", Text),
    column("priority", Integer), column("lock", Text), column("queueing_lock", Text), column("args", JSONB),
)  # fmt: skip
# Bound parameter names are prefixed: the insert can ride along with a review's rows (store.batch.Rider).
_NEW_JOB = pg_insert(_JOBS).values(
    queue_name=bindparam("job_queue"), task_name=bindparam("job_task"), priority=bindparam("job_priority"),
    lock=bindparam("job_lock"), queueing_lock=bindparam("job_queueing_lock"),
    args=cast(bindparam("job_args", type_=Text), JSONB),
)  # fmt: skip
_INSERT = _NEW_JOB.on_conflict_do_nothing()
_INSERT_RETURNING = _NEW_JOB.returning(_JOBS.c.id)


def _job_params(*, task: str, queue: str, args: dict[str, Any], lock: str | None, queueing_lock: str | None,
                priority: int) -> dict[str, Any]:  # fmt: skip
    return {"job_queue": queue, "job_task": task, "job_priority": priority, "job_lock": lock,
            "job_queueing_lock": queueing_lock, "job_args": json.dumps(args, sort_keys=True)}  # fmt: skip


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
    params = _job_params(task=task, queue=queue, args=args, lock=lock, queueing_lock=queueing_lock, priority=priority)
    bare = conn.connection() if isinstance(conn, Session) else conn  # a plain statement: skip the ORM's execute
    bare.execute(_INSERT, params)


def defer_batch(conn: Session | Connection, *, task: str, queue: str, args: list[dict[str, Any]]) -> list[int]:
    """Insert one ``todo`` job per ``args`` item (no locks) in the caller's transaction; returns their ids in order."""
    ids = []
    for item in args:
        params = _job_params(task=task, queue=queue, args=item, lock=None, queueing_lock=None, priority=0)
        ids.append(int(conn.execute(_INSERT_RETURNING, params).one()[0]))
    return ids


def job_states(conn: Session | Connection, *, ids: list[int]) -> dict[int, str]:
    """Status of each job still in the table (a finished job may have been deleted by its worker)."""
    rows = conn.execute(text("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(:ids)"), {"ids": ids})
    return {int(i): str(s) for i, s in rows}


def defer_publish(conn: Session | Connection, *, relayer: str) -> None:
    """Wake the publisher of ``relayer`` (checksummed or lower-case address) once the transaction commits."""
    job = publish_job(relayer=relayer)
    bare = conn.connection() if isinstance(conn, Session) else conn
    bare.execute(job.statement, dict(job.params))


def publish_job(*, relayer: str) -> Rider:
    """The insert of :func:`defer_publish` as a :class:`~service.store.batch.Rider`: it goes with the rows of a
    review in their transaction (and, on PostgreSQL, their statement)."""
    lock = publish_lock(relayer)
    params = _job_params(task=PUBLISH_TASK, queue=PUBLISH_QUEUE, args={"relayer": relayer.lower()}, lock=lock,
                         queueing_lock=lock, priority=0)  # fmt: skip
    return Rider(statement=_INSERT, params=params)


def relayer_slot(*, attester: str, relayers: int) -> int:
    """Which of ``relayers`` keys publishes this attester's requests: by its last hex digit, so every request of
    one attester goes through one key, in EAS-nonce order."""
    return int(attester[-1], 16) % relayers if relayers > 1 else 0


def slot_digits(*, slot: int, relayers: int) -> tuple[str, ...] | None:
    """The last hex digits of the attesters a slot publishes for (None: all, one key)."""
    if relayers <= 1:
        return None
    return tuple(d for d in "0123456789abcdef" if int(d, 16) % relayers == slot)
