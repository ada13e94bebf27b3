"""The job functions, registered on a Procrastinate blueprint (no connection, no settings at import time).

The worker binds a :class:`JobContext` (the wired runtime and one publisher per relayer key) before it starts;
tasks read it through :func:`context`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procrastinate import Blueprint
from procrastinate import JobContext as ProcrastinateContext
from procrastinate.jobs import Status

from service.chain.publisher import Publisher, PublishReport
from service.store.jobqueue import (
    NAMESPACE,
    PUBLISH_QUEUE,
    PUBLISH_TASK,
    REVERIFY_QUEUE,
    REVERIFY_TASK,
    SYNC_QUEUE,
    SYNC_TASK,
    defer,
    defer_publish,
)
from service.workflows.runtime import Runtime

log = logging.getLogger("omatrust.jobs")

blueprint = Blueprint()


@dataclass
class JobContext:
    """What the tasks of one worker process run on."""

    runtime: Runtime
    publishers: Mapping[str, Publisher]  # relayer address (lower-case) → its publisher
    linger: float = 0.2
    max_rounds: int = 1_000
    stalled_seconds: float = 10.0
    sync_chunk_blocks: int = 2_000
    extra: dict[str, Any] = field(default_factory=dict)


_bound: JobContext | None = None


def bind(ctx: JobContext) -> None:
    """Set the context the tasks of this process run on (the worker command does, once)."""
    global _bound
    _bound = ctx


def context() -> JobContext:
    if _bound is None:
        raise RuntimeError("service.jobs: no JobContext bound in this process (run `omatrust worker`)")
    return _bound


@blueprint.task(name=PUBLISH_TASK.removeprefix(NAMESPACE + ":"), queue=PUBLISH_QUEUE)
def publish(relayer: str) -> dict[str, int]:
    """Publish what is due for ``relayer``'s attesters until nothing is left: reconcile what a crashed run left
    ``submitted``, then claim, send and confirm. Waits ``linger`` first so a burst of submissions shares
    transactions. Returns the counts (kept in the job's events for operators)."""
    ctx = context()
    publisher = ctx.publishers.get(relayer.lower())
    if publisher is None:
        log.warning("publish job for %s: this worker has no such relayer key; left for another", relayer)
        raise LookupError(f"no relayer key {relayer} in this worker")
    log.info("publish[%s] start pid=%s", relayer, os.getpid())
    # Another worker may have sent with this key since this process last did: read its nonce afresh.
    publisher.client.resync_nonce()
    time.sleep(ctx.linger)
    total = PublishReport()
    for _ in range(ctx.max_rounds):
        report = publisher.run_once()
        total.add(report)
        if report.in_flight:
            time.sleep(0.2)  # a transaction in the mempool: wait for it before sending more
            continue
        if not (report.transactions or report.released or report.confirmed or report.failed):
            break
    log.info("publish[%s] done pid=%s %s", relayer, os.getpid(), total)
    return {"confirmed": total.confirmed, "failed": total.failed, "transactions": total.transactions}


@blueprint.task(name=SYNC_TASK.removeprefix(NAMESPACE + ":"), queue=SYNC_QUEUE, lock=SYNC_TASK, queueing_lock=SYNC_TASK)
def sync() -> dict[str, int]:
    """Index User Reviews from the chain up to the confirmed head (one at a time: job lock ``sync``)."""
    from service.chain.indexer import ReviewIndexer
    from service.workflows.sync import sync_chain

    ctx = context()
    rt = ctx.runtime
    indexer = ReviewIndexer(client=rt.eas, chunk_blocks=ctx.sync_chunk_blocks,
                            confirmations=max(0, rt.confirmations - 1))  # fmt: skip
    report = sync_chain(rt=rt, indexer=indexer)
    return {"to_block": int(getattr(report, "to_block", 0) or 0)}


@blueprint.task(name=REVERIFY_TASK.removeprefix(NAMESPACE + ":"), queue=REVERIFY_QUEUE, retry=3)
def reverify_partition(partition: str, selection: dict[str, Any], chunk_size: int = 2000) -> str:
    """Re-verify one partition (``K/N`` by subject) of ``omatrust reverify --distribute N``. Resumable: a retried
    job (its worker was killed) continues the unfinished run of the same selection from its last committed chunk
    (``resume=if-any``). Verification runs in this worker process (its concurrency is the parallelism). Returns
    the run id."""
    from service.workflows.partition import Partition
    from service.workflows.reverify import IF_ANY, ReverifyOptions, reverify

    rt = context().runtime
    options = ReverifyOptions(
        subject=selection.get("subject"), since=selection.get("since"), status=selection.get("status"),
        partition=Partition.parse(partition), resume=IF_ANY, chunk_size=chunk_size,
        task_size=max(1, min(250, chunk_size // 4 or 1)), workers=0,
    )  # fmt: skip
    log.info("reverify[%s] start pid=%s", partition, os.getpid())
    report = reverify(engine=rt.engine, resolver=rt.resolver, controllers=rt.controllers, policy=rt.policy,
                      options=options, clock=rt.clock, payments=rt.payments)  # fmt: skip
    log.info("reverify[%s] done pid=%s run=%s reviews=%s", partition, os.getpid(), report.run_id, report.reviews)
    return report.run_id


def publish_tick() -> None:
    """Enqueue a publish job for every relayer key (deduplicated by the queueing lock)."""
    ctx = context()
    with ctx.runtime.engine.begin() as conn:
        for relayer in ctx.publishers:
            defer_publish(conn, relayer=relayer)


def sync_tick() -> None:
    with context().runtime.engine.begin() as conn:
        defer(conn, task=SYNC_TASK, queue=SYNC_QUEUE, args={}, lock=SYNC_TASK, queueing_lock=SYNC_TASK)


async def sweep_stalled(job_context: ProcrastinateContext, timestamp: int) -> int:
    """Give the jobs of stalled workers (no heartbeat for ``stalled_seconds``: killed, frozen) back to the queue;
    a job whose retry would duplicate a waiting one (same queueing lock) is ended as failed instead — the waiting
    one does the work. Returns how many were handled."""
    manager = job_context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=context().stalled_seconds)
    handled = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except Exception:  # the queueing lock is taken by a waiting job: that one will run
            assert job.id is not None
            await manager.finish_job_by_id_async(job_id=job.id, status=Status.FAILED, delete_job=False)
        log.warning("job %s (%s) of a stalled worker handed back", job.id, job.task_name)
        handled += 1
    return handled
