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

from service.errors import StaleAggregate
from service.scoring import DEFAULT_PARAMS, Evidence, ScoringParams, aggregate_add, aggregate_remove
from service.store.aggregates import load_for_update, save
from service.store.tables import ReviewRow
from service.workflows.aggregates import aggregate_from_state, aggregate_to_state, aggregates_changed, scored

log = logging.getLogger(__name__)


def reclassify(
    session: Session, *, changes: Sequence[tuple[ReviewRow, str]], now: int, params: ScoringParams = DEFAULT_PARAMS
) -> list[str]:
    """For each (current row, new evidence class): move a live review to its new bucket, in the caller's
    transaction (rows are not modified here). Returns the subjects whose stored aggregate was inconsistent with
    their reviews or stored under other scoring units (left untouched: recompute them from the reviews)."""
    by_subject: dict[str, list[tuple[ReviewRow, str]]] = defaultdict(list)
    for row, evidence in changes:
        if row.superseded_by is None and row.evidence != evidence:
            by_subject[row.subject_normalized].append((row, evidence))
    inconsistent: list[str] = []
    if not by_subject:
        return inconsistent
    for subject, items in sorted(by_subject.items()):  # sorted: the write path's lock order
        stored = load_for_update(session, subject_normalized=subject)
        try:
            agg = stored_agg = aggregate_from_state(stored.state if stored else {}, params=params)
            for row, evidence in items:
                before = scored(row)
                after = dataclasses.replace(before, evidence=Evidence(evidence))
                agg = aggregate_add(agg=aggregate_remove(agg=agg, review=before), review=after)
        except (StaleAggregate, ValueError) as exc:
            log.warning("aggregate of %s not updated: %s", subject, exc)
            inconsistent.append(subject)
            continue
        save(session, subject_normalized=subject, state=aggregate_to_state(agg), review_count=agg.live_count(), now=now)
        aggregates_changed(session, before=stored_agg, after=agg, params=params)
    return inconsistent
