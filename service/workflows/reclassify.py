"""Move reviews whose evidence class changed (batch re-verification) between buckets of their subject aggregates.

``apply_review_change`` covers writes and supersession; a re-classification is "remove as it was, add as it is now"
for a live review, and nothing for a superseded one (the aggregate only counts superseded reviews).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import Session

from service.scoring import Evidence, aggregate_add, aggregate_remove
from service.store.aggregates import load_for_update, save
from service.store.tables import ReviewRow
from service.workflows.aggregates import aggregate_from_state, aggregate_to_state, scored

log = logging.getLogger(__name__)


def reclassify(session: Session, *, changes: Sequence[tuple[ReviewRow, str]], now: int) -> list[str]:
    """For each (current row, new evidence class): move a live review to its new bucket, in the caller's
    transaction (rows are not modified here). Returns the subjects whose stored aggregate was inconsistent with
    their reviews (left untouched: recompute them from the reviews)."""
    by_subject: dict[str, list[tuple[ReviewRow, str]]] = defaultdict(list)
    for row, evidence in changes:
        if row.superseded_by is None and row.evidence != evidence:
            by_subject[row.subject_normalized].append((row, evidence))
    inconsistent: list[str] = []
    for subject, items in sorted(by_subject.items()):
        stored = load_for_update(session, subject_normalized=subject)
        try:
            agg = aggregate_from_state(stored.state if stored else {})
            for row, evidence in items:
                before = scored(row)
                agg = aggregate_remove(agg=agg, review=before)
                agg = aggregate_add(agg=agg, review=dataclasses.replace(before, evidence=Evidence(evidence)))
        except ValueError as exc:
            log.warning("aggregate of %s not updated: %s", subject, exc)
            inconsistent.append(subject)
            continue
        save(session, subject_normalized=subject, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)
    return inconsistent
