"""The in-process job runner (``omatrust serve`` without workers) runs the job bodies the Procrastinate tasks run:
publish jobs linger then loop rounds until nothing is left, a failed job (node down) is deferred again after a
backoff, submissions arriving while a job waits share it, and the periodic ticks defer publish and sync jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from service.chain.publisher import PublishReport
from service.domain import Reason
from service.errors import ChainUnavailable
from service.jobs import tasks
from service.workflows import publish as publish_module
from service.workflows.jobs import JobContext
from service.workflows.publish import InProcessJobs

KEY = "0x00000000000000000000000000000000000000aa"


class _Client:
    def __init__(self) -> None:
        self.resyncs = 0

    def resync_nonce(self) -> None:
        self.resyncs += 1


class _Publisher:
    """Stands in for a Publisher: each round returns (or raises) the next scripted outcome, then empty rounds."""

    def __init__(self, outcomes: list[PublishReport | Exception]) -> None:
        self.client = _Client()
        self.outcomes = outcomes
        self.rounds = 0

    def run_once(self) -> PublishReport:
        self.rounds += 1
        outcome = self.outcomes.pop(0) if self.outcomes else PublishReport()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def drain(self) -> PublishReport:
        return self.run_once()


def _ctx(publisher: _Publisher, pauses: list[float]) -> JobContext:
    return JobContext(runtime=cast(Any, None), publishers={KEY: cast(Any, publisher)}, linger=0.1,
                      pause=pauses.append)  # fmt: skip


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.01)


def test_the_worker_task_and_the_runner_run_the_same_publish_job() -> None:
    worker_side = _Publisher([PublishReport(transactions=1, confirmed=3), PublishReport(transactions=1, confirmed=2)])
    pauses: list[float] = []
    tasks.bind(_ctx(worker_side, pauses))
    assert tasks.publish(KEY) == {"confirmed": 5, "failed": 0, "transactions": 2}
    assert (worker_side.rounds, worker_side.client.resyncs, pauses) == (3, 1, [0.1])  # linger, rounds till empty

    runner_side = _Publisher([PublishReport(transactions=1, confirmed=3), PublishReport(transactions=1, confirmed=2)])
    pauses = []
    runner = InProcessJobs(ctx=_ctx(runner_side, pauses), tick=3600)
    report = runner.run_job(job=("publish", KEY))
    assert (report.confirmed, report.transactions) == (5, 2)
    assert (runner_side.rounds, runner_side.client.resyncs, pauses) == (3, 1, [0.1])


def test_a_failed_job_is_deferred_again_after_a_backoff() -> None:
    down = ChainUnavailable(Reason.RPC_FAILED, "connection refused")
    publisher = _Publisher([down, down, PublishReport(transactions=1, confirmed=1)])
    pauses: list[float] = []
    runner = InProcessJobs(ctx=_ctx(publisher, pauses), tick=3600, backoff_initial=0.01, backoff_max=0.02)
    runner.start()  # the first publish tick fires at start
    try:
        _wait(lambda: publisher.rounds >= 4, "the job to succeed after two failures")
    finally:
        runner.stop()
    assert runner.jobs_run == 3  # failed, failed, then one job: a round that published and an empty one
    assert pauses == [0.1, 0.1, 0.1]


def test_submissions_while_a_job_waits_share_one_job() -> None:
    publisher = _Publisher([])
    gate = threading.Event()
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        assert gate.wait(30)

    ctx = _ctx(publisher, pauses)
    ctx.pause = pause
    runner = InProcessJobs(ctx=ctx, tick=3600)
    runner.start()
    try:
        _wait(lambda: bool(pauses), "the first job to linger")
        for _ in range(5):  # five submissions while it lingers: one more job waits, not five
            runner.wakeup()
        gate.set()
        _wait(lambda: runner.jobs_run == 2 and publisher.rounds == 2, "the two jobs")
    finally:
        runner.stop()
    assert runner.jobs_run == 2


def test_the_sync_tick_runs_the_sync_job(monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[JobContext] = []
    monkeypatch.setattr(publish_module, "sync_job", lambda *, ctx: synced.append(ctx) or 7)
    runner = InProcessJobs(ctx=_ctx(_Publisher([]), []), tick=3600, sync_every=0.01)
    runner.start()
    try:
        _wait(lambda: len(synced) >= 2, "two periodic syncs")
    finally:
        runner.stop()
    assert synced[0] is runner.ctx
