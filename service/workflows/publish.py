"""Publishing over the SQL outbox: the publisher of a relayer key (:func:`build_publisher`) and the in-process job
runner (:class:`InProcessJobs`, :class:`PublishLoop`) that ``omatrust serve`` uses when no workers run.

Every publish job first reconciles what a previous run left ``submitted`` (crash between send and receipt), then
drains. One publisher per relayer key (it is a single writer; see service.chain.publisher).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlmodel import Session

from service.chain.eas_relayer import EasClient
from service.chain.publisher import Publisher, PublishReport
from service.errors import ChainUnavailable
from service.workflows.jobs import JobContext, publish_job, publish_tick, sync_job, sync_tick
from service.workflows.outbox import SqlOutbox
from service.workflows.runtime import Runtime
from service.workflows.withdraw import withdraw_review

log = logging.getLogger(__name__)


def _withdrawer(rt: Runtime) -> Callable[[Session, str, int], object]:
    """A review whose attestation cannot land is withdrawn (not live) in the transaction that fails its item."""

    def withdraw(session: Session, review_id: str, now: int) -> object:
        return withdraw_review(session, rt=rt, review_id=review_id, now=now)

    return withdraw


def build_publisher(
    *, rt: Runtime, client: EasClient | None = None, digits: Sequence[str] | None = None, batch_size: int = 64
) -> Publisher:
    """The publisher of one relayer key (``client``, default ``rt.eas``) over the SQL outbox, restricted to that
    key's share of attesters (``digits``, see ``SqlOutbox``) when several keys publish in parallel."""
    return Publisher(
        client=client or rt.eas,
        outbox=SqlOutbox(engine=rt.engine, chain_ref=rt.chain_ref, on_failed=_withdrawer(rt), digits=digits),
        clock=rt.clock,
        batch_size=batch_size,
        confirmations=rt.confirmations,
    )


class InProcessJobs:
    """The background jobs run in this process: the job bodies of ``service.workflows.jobs`` (the very functions
    ``omatrust worker`` runs as Procrastinate tasks) on one thread, for ``omatrust serve`` without workers — the
    SQLite / embedded-chain Quickstart needs no PostgreSQL.

    It is the :class:`~service.workflows.jobs.JobQueue` of its context: a deferred job waits in a set (at most one
    waiting per publish key, one sync — Procrastinate's queueing lock); :meth:`wakeup` (called after every
    submission) defers a publish job per key. The thread runs waiting jobs in order, fires the periodic ticks
    (publish every ``tick`` seconds: retries that came due, crash recovery; sync every ``sync_every`` seconds when
    > 0) and, when a job raises (node down), defers it again after an exponential backoff.
    """

    def __init__(
        self,
        *,
        ctx: JobContext,
        tick: float = 0.5,
        sync_every: float = 0.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.ctx = ctx
        ctx.queue = self
        self.tick = tick
        self.sync_every = sync_every
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._due: dict[tuple[str, str], None] = {}  # ("publish", relayer) / ("sync", "") in defer order
        self._cond = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_tick = 0.0
        self._next_sync = 0.0
        self.jobs_run = 0

    # -- JobQueue
    def defer_publish(self, *, relayer: str) -> None:
        self._defer(("publish", relayer.lower()))

    def defer_sync(self) -> None:
        self._defer(("sync", ""))

    def _defer(self, job: tuple[str, str]) -> None:
        with self._cond:
            self._due.setdefault(job, None)
            self._cond.notify_all()

    @property
    def publisher(self) -> Publisher:
        """The publisher of the first relayer key (the only one on the Quickstart)."""
        return next(iter(self.ctx.publishers.values()))

    def wakeup(self) -> None:
        """Defer a publish job for every relayer key (a review was just enqueued)."""
        for relayer in self.ctx.publishers:
            self.defer_publish(relayer=relayer)

    def run_job(self, *, job: tuple[str, str]) -> PublishReport:
        """Run one job now, on the calling thread. Raises what the job raises."""
        kind, arg = job
        self.jobs_run += 1
        if kind == "publish":
            return publish_job(ctx=self.ctx, relayer=arg)
        sync_job(ctx=self.ctx)
        return PublishReport()

    def drain(self) -> PublishReport:
        """Reconcile and publish everything due, synchronously and without lingering (CLI, tests).
        Raises ChainUnavailable."""
        total = PublishReport()
        for publisher in self.ctx.publishers.values():
            total.add(publisher.drain())
        return total

    # -- the thread
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="omatrust-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _take(self) -> tuple[str, str] | None:
        """The next due job (fires the ticks that came due first); None after waiting for one in vain."""
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + self.tick
            publish_tick(ctx=self.ctx)  # the worker's periodic tick, deferring into this runner
        if self.sync_every > 0 and now >= self._next_sync:
            self._next_sync = now + self.sync_every
            sync_tick(ctx=self.ctx)
        with self._cond:
            if not self._due and not self._stop.is_set():
                wait = self._next_tick - now
                if self.sync_every > 0:
                    wait = min(wait, self._next_sync - now)
                self._cond.wait(max(0.0, wait))
            if not self._due or self._stop.is_set():
                return None
            job = next(iter(self._due))
            del self._due[job]
            return job

    def _run(self) -> None:
        backoff = self.backoff_initial
        self._next_sync = time.monotonic() + self.sync_every  # the first sync after one interval
        while not self._stop.is_set():
            job = self._take()
            if job is None:
                continue
            try:
                self.run_job(job=job)
            except ChainUnavailable as exc:
                log.warning("%s job: chain unavailable, again in %.1fs: %s", job[0], backoff, exc.detail)
            except Exception:
                log.exception("%s job failed, again in %.1fs", job[0], backoff)
            else:
                backoff = self.backoff_initial
                continue
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max)
            self._defer(job)


class PublishLoop(InProcessJobs):
    """The in-process jobs of one runtime with one publisher (its relayer key, ``rt.eas``): what ``omatrust serve``
    runs without workers. ``interval``: the publish tick; ``linger``: how long a publish job waits for more
    submissions before its first round."""

    def __init__(
        self, *, rt: Runtime, batch_size: int = 64, interval: float = 0.5, linger: float = 0.05,
        sync_every: float = 0.0,
    ) -> None:  # fmt: skip
        publisher = build_publisher(rt=rt, batch_size=batch_size)
        relayer = rt.eas.relayer.address.lower() if rt.eas.relayer is not None else "-"
        super().__init__(ctx=JobContext(runtime=rt, publishers={relayer: publisher}, linger=linger),
                         tick=interval, sync_every=sync_every)  # fmt: skip
