"""The job functions, registered on a Procrastinate blueprint (no connection, no settings at import time).

The worker binds a :class:`JobContext` (the wired runtime and one publisher per relayer key) before it starts;
tasks read it through :func:`context`. The task bodies are ``service.workflows.jobs`` — the same functions
``omatrust serve`` runs in process when there are no workers.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from procrastinate import Blueprint
from procrastinate import JobContext as ProcrastinateContext
from procrastinate.jobs import Status

from service.store.jobqueue import (
    NAMESPACE,
    PUBLISH_QUEUE,
    PUBLISH_TASK,
    REVERIFY_QUEUE,
    REVERIFY_TASK,
    SYNC_QUEUE,
    SYNC_TASK,
)
from service.workflows import jobs
from service.workflows.jobs import JobContext

__all__ = ["JobContext", "bind", "blueprint", "context"]

log = logging.getLogger("omatrust.jobs")

blueprint = Blueprint()

_bound: JobContext | None = None


def bind(ctx: JobContext) -> None:
    """Set the context the tasks of this process run on (the worker command does, once)."""
    global _bound
    _bound = ctx


def context() -> JobContext:
    """The bound context. Raises RuntimeError when none is bound."""
    if _bound is None:
        raise RuntimeError("service.jobs: no JobContext bound in this process (run `omatrust worker`)")
    return _bound


@blueprint.task(name=PUBLISH_TASK.removeprefix(NAMESPACE + ":"), queue=PUBLISH_QUEUE)
def publish(relayer: str) -> dict[str, int]:
    """The publish job (``service.workflows.jobs.publish_job``: linger, then rounds until nothing is left) for
    ``relayer``. Returns the counts (kept in the job's events for operators). Raises LookupError (no such key in
    this worker) and ChainUnavailable (the periodic tick defers it again)."""
    log.info("publish[%s] start pid=%s", relayer, os.getpid())
    total = jobs.publish_job(ctx=context(), relayer=relayer)
    log.info("publish[%s] done pid=%s %s", relayer, os.getpid(), total)
    return {"confirmed": total.confirmed, "failed": total.failed, "transactions": total.transactions}


@blueprint.task(name=SYNC_TASK.removeprefix(NAMESPACE + ":"), queue=SYNC_QUEUE, lock=SYNC_TASK, queueing_lock=SYNC_TASK)
def sync() -> dict[str, int]:
    """Index User Reviews from the chain up to the confirmed head (one at a time: job lock ``sync``)."""
    return {"to_block": jobs.sync_job(ctx=context())}


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
    jobs.publish_tick(ctx=context())


def sync_tick() -> None:
    """Enqueue a sync job (deduplicated by the queueing lock)."""
    jobs.sync_tick(ctx=context())


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
