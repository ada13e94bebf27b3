"""GroupCommit: concurrent callers' items written in groups, each caller getting its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

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
    first = pool.submit(gc.run, 0, write=writer)
    assert writer.started.wait(TIMEOUT)
    return first


def test_a_lone_caller_writes_a_group_of_one() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    writer = Writer()
    writer.release.set()
    assert gc.run(7, write=writer) == 70
    assert gc.run(8, write=writer) == 80
    assert writer.groups == [[7], [8]]


def test_callers_arriving_during_a_write_share_the_next_group_and_get_their_own_outcomes() -> None:
    gc: GroupCommit[int, int] = GroupCommit()
    writer = Writer(fail_items=[3])
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = _blocked_first(gc, writer, pool)
        later = {i: pool.submit(gc.run, i, write=writer) for i in range(1, 6)}
        assert gc.wait_queued(5, timeout=TIMEOUT)
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
    gc: GroupCommit[int, int] = GroupCommit()
    writer = Writer(raise_for=2)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = _blocked_first(gc, writer, pool)
        later = [pool.submit(gc.run, i, write=writer) for i in (1, 2)]
        assert gc.wait_queued(2, timeout=TIMEOUT)
        writer.release.set()
        assert first.result(TIMEOUT) == 0
        for fut in later:
            with pytest.raises(RuntimeError, match="whole group"):
                fut.result(TIMEOUT)
    assert gc.run(9, write=writer) == 90  # the committer is not stuck after a failed group


def test_groups_are_capped_and_the_oldest_waiting_caller_leads_the_next() -> None:
    gc: GroupCommit[int, int] = GroupCommit(max_group=2)
    writer = Writer()
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = _blocked_first(gc, writer, pool)
        later: dict[int, Future[int]] = {}
        for i in range(1, 6):  # one at a time, so the order of arrival is known
            later[i] = pool.submit(gc.run, i, write=writer)
            assert gc.wait_queued(i, timeout=TIMEOUT)
        writer.release.set()
        assert first.result(TIMEOUT) == 0
        assert {i: f.result(TIMEOUT) for i, f in later.items()} == {i: i * 10 for i in range(1, 6)}
    assert writer.groups == [[0], [1, 2], [3, 4], [5]]
    # each group is written by a thread of its own callers: no caller writes other callers' groups forever
    assert len(set(writer.threads[1:])) == 3


def test_max_group_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(max_group=0)
