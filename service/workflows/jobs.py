"""The bodies of the background jobs, shared by every way of running them.

* ``omatrust worker`` (PostgreSQL): Procrastinate tasks in ``service.jobs.tasks`` call these functions.
* ``omatrust serve`` without workers (the SQLite / embedded-chain Quickstart, or PostgreSQL with the in-process
  publisher): :class:`service.workflows.publish.InProcessJobs` calls the same functions from a thread.

So publishing, sync and the periodic ticks behave the same whichever runs them; only where a deferred job waits
differs (a :class:`JobQueue`: Procrastinate's table, or the in-process runner's set of due jobs).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from service.chain.publisher import Publisher, PublishReport
from service.store.jobqueue import SYNC_QUEUE, SYNC_TASK, defer, defer_publish
from service.workflows.runtime import Runtime

log = logging.getLogger("omatrust.jobs")

# While a transaction of ours waits in the node's mempool, a publish job looks again after this long.
IN_FLIGHT_RECHECK_SECONDS = 0.2


class JobQueue(Protocol):
    """Where the periodic ticks put the jobs they defer."""

    def defer_publish(self, *, relayer: str) -> None:
        """A publish job for ``relayer`` (at most one waiting per key)."""
        ...

    def defer_sync(self) -> None:
        """A chain-sync job (at most one waiting)."""
        ...


@dataclass
class JobContext:
    """What the jobs of one process run on. ``pause(seconds)`` is how a job waits (linger, a transaction in the
    mempool): ``time.sleep`` in service, driven explicitly by tests."""

    runtime: Runtime
    publishers: Mapping[str, Publisher]  # relayer address (lower-case) → its publisher
    linger: float = 0.2
    max_rounds: int = 1_000
    stalled_seconds: float = 10.0
    sync_chunk_blocks: int = 2_000
    queue: JobQueue | None = None
    pause: Callable[[float], object] = time.sleep
    extra: dict[str, Any] = field(default_factory=dict)


class PgJobQueue:
    """:class:`JobQueue` on Procrastinate's table (PostgreSQL), one transaction per deferred job."""

    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    def defer_publish(self, *, relayer: str) -> None:
        with self.engine.begin() as conn:
            defer_publish(conn, relayer=relayer)

    def defer_sync(self) -> None:
        with self.engine.begin() as conn:
            defer(conn, task=SYNC_TASK, queue=SYNC_QUEUE, args={}, lock=SYNC_TASK, queueing_lock=SYNC_TASK)


def publish_job(*, ctx: JobContext, relayer: str) -> PublishReport:
    """Publish what is due for ``relayer``'s attesters until nothing is left: wait ``linger`` first (submissions
    arriving meanwhile share transactions instead of one review per transaction), then rounds of reconcile, claim,
    send, confirm.

    Raises:
        LookupError: this process has no publisher for ``relayer`` (left for another process).
        ChainUnavailable: RPC failure (the runner retries later; item states are kept).
    """
    publisher = ctx.publishers.get(relayer.lower())
    if publisher is None:
        log.warning("publish job for %s: this process has no such relayer key; left for another", relayer)
        raise LookupError(f"no relayer key {relayer} in this process")
    log.debug("publish[%s] start pid=%s", relayer, os.getpid())
    # Another process may have sent with this key since this one last did: read its nonce afresh.
    publisher.client.resync_nonce()
    if ctx.linger > 0:
        ctx.pause(ctx.linger)
    total = PublishReport()
    for _ in range(ctx.max_rounds):
        report = publisher.run_once()
        total.add(report)
        if report.in_flight:
            ctx.pause(IN_FLIGHT_RECHECK_SECONDS)  # a transaction in the mempool: wait for it before sending more
            continue
        if not (report.transactions or report.released or report.confirmed or report.failed or report.reorged):
            break
    log.debug("publish[%s] done pid=%s %s", relayer, os.getpid(), total)
    return total


def sync_job(*, ctx: JobContext) -> int:
    """Index User Reviews from the chain up to the confirmed head; returns the block reached.

    Raises:
        ChainUnavailable: RPC failure.
    """
    from service.chain.indexer import ReviewIndexer
    from service.workflows.sync import sync_chain

    rt = ctx.runtime
    indexer = ReviewIndexer(client=rt.eas, chunk_blocks=ctx.sync_chunk_blocks,
                            confirmations=max(0, rt.confirmations - 1))  # fmt: skip
    report = sync_chain(rt=rt, indexer=indexer)
    return int(getattr(report, "to_block", 0) or 0)


def _queue(ctx: JobContext) -> JobQueue:
    if ctx.queue is None:
        raise RuntimeError("no job queue bound in this process's JobContext")
    return ctx.queue


def publish_tick(*, ctx: JobContext) -> None:
    """Defer a publish job for every relayer key (retries that came due, crash recovery). Raises RuntimeError when
    the context has no queue."""
    queue = _queue(ctx)
    for relayer in ctx.publishers:
        queue.defer_publish(relayer=relayer)


def sync_tick(*, ctx: JobContext) -> None:
    """Defer a sync job. Raises RuntimeError when the context has no queue."""
    _queue(ctx).defer_sync()
