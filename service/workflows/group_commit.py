"""Group commit: concurrent callers' items written together, one transaction for a group.

Each caller hands its item (and the function that writes a group) to :meth:`GroupCommit.run` and gets its own
outcome back. No thread of its own and no timer: a caller that arrives while fewer than ``writers`` groups are being
written leads — it takes every item waiting (its own first, at most ``max_group``), writes them with one call of
``write`` and hands the outcomes out. Items arriving while every writer is busy wait; when a leader is done, the
oldest of them leads the next group. So at low load every caller writes at once (groups of one, ``writers`` of them
in parallel: the database runs their transactions side by side), and under load a group holds what arrived during
the previous writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Groups written, the items they held, and the largest."""

    groups: int
    items: int
    largest: int


class _Slot(Generic[T, R]):
    __slots__ = ("failure", "item", "lead", "outcome", "ready")

    def __init__(self, item: T) -> None:
        self.item = item
        self.outcome: R | None = None
        self.failure: BaseException | None = None
        self.lead = False  # woken to lead the next group, not with an outcome
        self.ready = threading.Event()


class GroupCommit(Generic[T, R]):
    """Runs a group's ``write`` on items from concurrent callers (see the module docstring).

    ``write(items)`` returns one outcome per item, in order: a value, or an exception that is raised to that item's
    caller alone. If ``write`` itself raises, every caller of the group gets that exception. Every caller of one
    instance passes the same ``write`` (the group's leader runs its own).

    Raises:
        ValueError: ``max_group`` or ``writers`` < 1.
    """

    def __init__(self, *, max_group: int = 32, writers: int = 1) -> None:
        if max_group < 1 or writers < 1:
            raise ValueError("max_group and writers must be at least 1")
        self.max_group = max_group
        self.writers = writers
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        self._waiting: list[_Slot[T, R]] = []
        self._writing = 0  # groups being written; invariant: items wait only while all ``writers`` are busy
        self._written = GroupStats(groups=0, items=0, largest=0)

    def run(self, *, item: T, write: Callable[[Sequence[T]], Sequence[R | BaseException]]) -> R:
        """Write ``item`` with whatever else is waiting; return its outcome.

        Raises:
            the exception ``write`` gave for this item, or raised for the whole group.
        """
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            leads = self._writing < self.writers
            if leads:
                self._writing += 1
            else:
                self._waiting.append(slot)
                self._queued.notify_all()
        if not leads:
            slot.ready.wait()
            if not slot.lead:
                return self._unwrap(slot)
        self._lead(slot, write)
        return self._unwrap(slot)

    def _lead(self, first: _Slot[T, R], write: Callable[[Sequence[T]], Sequence[R | BaseException]]) -> None:
        """Write ``first`` and the oldest waiting items as one group, hand the outcomes out, then hand this writer's
        turn to the oldest item still waiting (or give it back)."""
        with self._lock:
            take = self.max_group - 1
            group, self._waiting = [first, *self._waiting[:take]], self._waiting[take:]
        try:
            outcomes = list(write([s.item for s in group]))
            if len(outcomes) != len(group):
                raise RuntimeError(f"write gave {len(outcomes)} outcomes for {len(group)} items")
        except BaseException as exc:  # handed to every caller of the group, re-raised there
            outcomes = [exc] * len(group)
        for slot, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.failure = outcome
            else:
                slot.outcome = outcome
            slot.lead = False
            slot.ready.set()
        with self._lock:  # hand over: the oldest waiting item leads the next group (taken off the queue now, so
            w = self._written  # two leaders finishing together never promote the same one)
            self._written = GroupStats(groups=w.groups + 1, items=w.items + len(group),
                                       largest=max(w.largest, len(group)))  # fmt: skip
            if self._waiting:
                nxt = self._waiting.pop(0)
                nxt.lead = True
                nxt.ready.set()
            else:
                self._writing -= 1

    def stats(self) -> GroupStats:
        """What this instance has written so far (for metrics)."""
        with self._lock:
            return self._written

    def wait_queued(self, *, count: int, timeout: float) -> bool:
        """Block until at least ``count`` items wait for a group (the group being written not counted) or
        ``timeout`` seconds pass; returns whether they do (for diagnostics and tests)."""
        with self._queued:
            return self._queued.wait_for(lambda: len(self._waiting) >= count, timeout=timeout)

    @staticmethod
    def _unwrap(slot: _Slot[T, R]) -> R:
        if slot.failure is not None:
            raise slot.failure
        return slot.outcome  # type: ignore[return-value]
