"""GroupCommit: concurrent callers' items written in groups, each caller getting its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from service.workflows.group_commit import GroupCommit

TIMEOUT = 30.0


class Writer:
    """Records each group; the first group's write blocks until released (so the others queue up meanwhile)."""

    def __init__(self, *, fail_items: Sequence[int] = (), raise_for: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_items = set(fail_items)
        self.raise_for = raise_for
        self.threads: list[str] = []

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.groups.append(list(items))
        self.threads.append(threading.current_thread().name)
        if len(self.groups) == 1:
            self.started.set()
            assert self.release.wait(TIMEOUT)
        if self.raise_for is not None and self.raise_for in items:
            raise RuntimeError("the whole group failed")
        return [ValueError(f"item {i} refused") if i in self.fail_items else i * 10 for i in items]


def _blocked_first(gc: GroupCommit[int, int], writer: Writer, pool: ThreadPoolExecutor) -> Future[int]:
    first = pool.submit(gc.run, item=0, write=writer)
    assert writer.started.wait(TIMEOUT)
    return first


def test_a_lone_caller_writes_a_group_of_one() -> None:
    gc: GroupCommit[int, int] = GroupCommit(writers=1)
    writer = Writer()
    writer.release.set()
    assert gc.run(item=7, write=writer) == 70
    assert gc.run(item=8, write=writer) == 80
    assert writer.groups == [[7], [8]]


def test_callers_arriving_during_a_write_share_the_next_group_and_get_their_own_outcomes() -> None:
    gc: GroupCommit[int, int] = GroupCommit(writers=1)
    writer = Writer(fail_items=[3])
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = _blocked_first(gc, writer, pool)
        later = {i: pool.submit(gc.run, item=i, write=writer) for i in range(1, 6)}
        assert gc.wait_queued(count=5, timeout=TIMEOUT)
        writer.release.set()
        assert first.result(TIMEOUT) == 0
        for i, fut in later.items():
            if i == 3:
                with pytest.raises(ValueError, match="item 3 refused"):
                    fut.result(TIMEOUT)
            else:
                assert fut.result(TIMEOUT) == i * 10
    assert writer.groups[0] == [0]
    assert sorted(writer.groups[1]) == [1, 2, 3, 4, 5]  # one group: they all waited while the first was written
    assert len(writer.groups) == 2


def test_a_failing_write_fails_every_caller_of_its_group_and_no_other() -> None:
    gc: GroupCommit[int, int] = GroupCommit(writers=1)
    writer = Writer(raise_for=2)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = _blocked_first(gc, writer, pool)
        later = [pool.submit(gc.run, item=i, write=writer) for i in (1, 2)]
        assert gc.wait_queued(count=2, timeout=TIMEOUT)
        writer.release.set()
        assert first.result(TIMEOUT) == 0
        for fut in later:
            with pytest.raises(RuntimeError, match="whole group"):
                fut.result(TIMEOUT)
    assert gc.run(item=9, write=writer) == 90  # the committer is not stuck after a failed group


def test_groups_are_capped_and_the_oldest_waiting_caller_leads_the_next() -> None:
    gc: GroupCommit[int, int] = GroupCommit(max_group=2, writers=1)
    writer = Writer()
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = _blocked_first(gc, writer, pool)
        later: dict[int, Future[int]] = {}
        for i in range(1, 6):  # one at a time, so the order of arrival is known
            later[i] = pool.submit(gc.run, item=i, write=writer)
            assert gc.wait_queued(count=i, timeout=TIMEOUT)
        writer.release.set()
        assert first.result(TIMEOUT) == 0
        assert {i: f.result(TIMEOUT) for i, f in later.items()} == {i: i * 10 for i in range(1, 6)}
    assert writer.groups == [[0], [1, 2], [3, 4], [5]]
    # each group is written by a thread of its own callers: no caller writes other callers' groups forever
    assert len(set(writer.threads[1:])) == 3


def test_two_writers_write_two_groups_at_once_and_the_rest_waits_for_one_of_them() -> None:
    gc: GroupCommit[int, int] = GroupCommit(writers=2)
    both = threading.Barrier(2, timeout=TIMEOUT)  # passes only if two groups are being written at the same time
    release, two_writing = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    writing: list[int] = []

    def write(items: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(items))
        writing.append(gc._writing)
        if len(groups) == 2:
            two_writing.set()
        if len(groups) <= 2:
            both.wait()
            assert release.wait(TIMEOUT)
        return [i * 10 for i in items]

    with ThreadPoolExecutor(max_workers=6) as pool:
        first = [pool.submit(gc.run, item=i, write=write) for i in (0, 1)]
        assert two_writing.wait(TIMEOUT)
        later = [pool.submit(gc.run, item=i, write=write) for i in (2, 3, 4)]
        assert gc.wait_queued(count=3, timeout=TIMEOUT)  # both writers busy: they wait
        release.set()
        assert [f.result(TIMEOUT) for f in first + later] == [0, 10, 20, 30, 40]
    assert sorted(map(sorted, groups[:2])) == [[0], [1]]
    assert sorted(i for g in groups[2:] for i in g) == [2, 3, 4]
    assert len(groups) in (3, 4)  # the waiting three form one group, or two when both writers took some
    assert max(writing) == 2  # never more groups at once than writers …
    assert gc._writing == 0  # … and every turn given back


def test_max_group_and_writers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(max_group=0)
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(writers=0)


def test_the_settings_shape_the_runtimes_group_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.config import Settings
    from service.wiring import wire

    monkeypatch.chdir(tmp_path)  # the embedded chain's file goes beside the database
    wired = wire(Settings(database_url=f"sqlite:///{tmp_path / 'o.db'}", submit_group_max=5,
                          submit_group_writers=3), publisher=False)  # fmt: skip
    try:
        assert (wired.runtime.submissions.max_group, wired.runtime.submissions.writers) == (5, 3)
    finally:
        wired.close()


def test_a_deadlock_or_serialization_failure_is_retried_alone_an_unusable_database_is_not() -> None:
    from sqlalchemy import exc as sa_exc

    from service.workflows.submit import _database_unusable

    class Orig(Exception):
        def __init__(self, sqlstate: str | None) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    def operational(sqlstate: str | None) -> sa_exc.OperationalError:
        return sa_exc.OperationalError("statement", {}, Orig(sqlstate))

    assert not _database_unusable(operational("40P01"))  # deadlock detected: alone, each may pass
    assert not _database_unusable(operational("40001"))  # serialization failure
    assert _database_unusable(operational("57P01"))  # admin shutdown
    assert _database_unusable(operational(None))  # SQLite: database is locked / cannot open
    assert _database_unusable(sa_exc.TimeoutError())  # the pool is exhausted
    assert not _database_unusable(sa_exc.IntegrityError("statement", {}, Orig("23505")))  # an item's row
