"""Score-aggregate changes of a whole sync chunk, applied once per subject at the end of the chunk's transaction.

``apply_review_change`` loads, locks and saves the subject's aggregate for every review written: a row lock, a read
and a write per review. ``ChunkAggregates`` is an ``AggregateChange`` that records each change as the scoring core
sees it *at the moment of the write* (a row may be superseded later in the same chunk: the snapshot keeps the order
of events exact), and :meth:`flush` applies them in order per subject (``withdraw.apply_many``: every touched row
locked in sorted order — the write path's lock order — read in one query and written in one statement).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from service.scoring import ScoredReview
from service.store.batch import Rider
from service.store.tables import ReviewRow
from service.workflows.aggregates import scored
from service.workflows.runtime import Runtime
from service.workflows.withdraw import apply_many


class ChunkAggregates:
    def __init__(self, *, rt: Runtime) -> None:
        self.rt = rt
        self._ops: list[tuple[str, bool, ScoredReview]] = []  # (subject, add?, review) in the order of the writes

    def __call__(
        self, session: Session, *, added: ReviewRow | None, removed: ReviewRow | None, now: int,
        riders: list[Rider] | None = None, locked: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        subject = (added or removed).subject_normalized  # type: ignore[union-attr]
        if removed is not None:
            self._ops.append((subject, False, scored(removed, superseded=False)))
            self._ops.append((subject, True, scored(removed, superseded=True)))
        if added is not None:
            self._ops.append((subject, True, scored(added)))

    def mark(self) -> int:
        """A point to :meth:`rollback_to` when the savepoint around a write is rolled back."""
        return len(self._ops)

    def rollback_to(self, mark: int) -> None:
        del self._ops[mark:]

    def flush(
        self, session: Session, *, now: int, riders: list[Rider] | None = None,
        locked: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """Apply everything recorded, in the caller's transaction, and forget it. ``riders`` and ``locked``: see
        ``withdraw.apply_many``."""
        ops: dict[str, list[tuple[bool, ScoredReview]]] = {}
        for subject, add, review in self._ops:
            ops.setdefault(subject, []).append((add, review))
        if ops:
            apply_many(session, rt=self.rt, ops=ops, now=now, riders=riders, locked=locked)
        self._ops.clear()
