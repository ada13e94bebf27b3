"""The ranking of services by trust score: a per-process snapshot of every subject's score (rebuilt when any
review was written or after ``max_age``), keyset-paginated. Stale aggregates (other scoring units) make the
snapshot be built exactly from the reviews (``RankingPage.aggregates == "recomputed"``) and ask for a rebuild."""

from __future__ import annotations

import base64
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Literal

from service.errors import BadCursor, StaleAggregate
from service.scoring import (
    ScoringParams,
    SubjectAggregate,
    TrustScore,
    aggregate_merge,
    aggregate_reviews,
    global_prior_mean,
    score_from_aggregate,
)
from service.storable import text_refusal
from service.store.engine import session_scope
from service.store.scoring_queries import iter_aggregate_states, iter_reviews_by_subject
from service.workflows.aggregates import GLOBAL_KEY, aggregate_from_state, aggregate_to_state, global_aggregate
from service.workflows.erc8004_reputation import score_stream
from service.workflows.reputation import AggregateSource, ScoreContext, exact_global, scored_fact

RankSort = Literal["lower90", "score", "reviews"]
RANK_SORTS: tuple[RankSort, ...] = ("lower90", "score", "reviews")


@dataclass(frozen=True, slots=True)
class RankedService:
    did: str
    score: TrustScore


@dataclass(frozen=True, slots=True)
class RankingPage:
    sort: RankSort
    as_of: int
    prior_mean: float
    params_version: str
    items: tuple[RankedService, ...]
    next_cursor: str | None
    total: int
    aggregates: AggregateSource = "stored"


def _sort_value(score: TrustScore, sort: RankSort) -> float:
    if sort == "reviews":
        return float(score.counts.live)
    return score.lower90 if sort == "lower90" else score.score


@dataclass
class _Snapshot:
    key: str
    built_at: float
    as_of: int
    prior_mean: float
    scores: list[RankedService]
    aggregates: AggregateSource = "stored"
    orders: dict[str, list[RankedService]] = field(default_factory=dict)


class RankingCache:
    """Scores of every subject for the ranking, rebuilt when any review was written (the folded global aggregate
    changed: within ``aggregates.GLOBAL_FOLD_MAX_AGE`` for other processes' writes) or after ``max_age`` seconds
    (decay moves scores slowly). A rebuild is O(subjects): it scores each aggregate without candidates.
    One rebuild at a time; others wait for it."""

    def __init__(self, *, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def snapshot(self, *, rt: ScoreContext, params: ScoringParams) -> _Snapshot:
        try:  # the folded global aggregate changes with every review written (aggregates.global_aggregate)
            folded = aggregate_to_state(global_aggregate(engine=rt.engine, params=params))
        except StaleAggregate:
            folded = {"stale": True}
        key = params.version + json.dumps(folded, sort_keys=True)
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.key != key or rt.clock() - snap.built_at > self.max_age:
                snap = _build_snapshot(rt=rt, params=params, key=key)
                self._snapshot = snap
            return snap


def _build_snapshot(*, rt: ScoreContext, params: ScoringParams, key: str) -> _Snapshot:
    now = int(rt.clock())
    try:
        with session_scope(rt.engine) as session:
            aggs = [(row.key, aggregate_from_state(row.state, params=params))
                    for row in iter_aggregate_states(session, exclude=(GLOBAL_KEY,))]  # fmt: skip
        # μ₀ from exactly the aggregates ranked (the global aggregate is their merge)
        prior = global_prior_mean(agg=aggregate_merge(aggregates=[a for _, a in aggs], params=params), params=params)
        source: AggregateSource = "stored"
    except StaleAggregate:
        rt.aggregates_stale()
        prior, aggs = _exact_aggregates(rt=rt, params=params)
        source = "recomputed"
    scores = [
        RankedService(
            did=subject,
            score=score_from_aggregate(
                agg=agg,
                params=params,
                now=now,
                prior_mean=prior,
                erc8004=score_stream(engine=rt.engine, did=subject, params=params),  # () without a read while off
            ),
        )
        for subject, agg in aggs
        if agg.live_count() > 0
    ]
    return _Snapshot(key=key, built_at=rt.clock(), as_of=now, prior_mean=prior, scores=scores, aggregates=source)


def _exact_aggregates(*, rt: ScoreContext, params: ScoringParams) -> tuple[float, list[tuple[str, SubjectAggregate]]]:
    """μ₀ and every subject's aggregate computed from the reviews (O(all reviews)), bypassing stale rows."""
    with session_scope(rt.engine) as session:
        prior = global_prior_mean(agg=exact_global(session, params=params), params=params)
        aggs = [
            (group[0].subject_normalized, aggregate_reviews(reviews=map(scored_fact, group), params=params))
            for group in iter_reviews_by_subject(session)
        ]
    return prior, aggs


def _encode_cursor(sort: RankSort, value: float, did: str) -> str:
    raw = json.dumps([sort, value, did], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: RankSort) -> tuple[float, str]:
    """Raises BadCursor on anything but a cursor :func:`ranking` issued for this sort."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("bad cursor") from exc
    if not (
        isinstance(value, list)
        and len(value) == 3
        and value[0] == sort
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
        and isinstance(value[2], str)
    ):
        raise BadCursor("bad cursor")
    try:
        number = float(value[1])
    except OverflowError as exc:
        raise BadCursor("bad cursor") from exc
    if not math.isfinite(number) or text_refusal(value[2]) is not None:  # NUL never reaches SQL
        raise BadCursor("bad cursor")
    return number, value[2]


def ranking(
    *,
    rt: ScoreContext,
    sort: RankSort = "lower90",
    limit: int = 20,
    cursor: str | None = None,
    cache: RankingCache | None = None,
    params: ScoringParams | None = None,
) -> RankingPage:
    """Services with at least one live review, best first by ``sort`` (ties by DID), keyset-paginated.

    ``lower90`` (default) ranks by the 10th percentile, so a few glowing reviews do not outrank a long verified
    record; ``score`` by the posterior mean; ``reviews`` by live review count.

    Raises:
        BadCursor: ``cursor`` was not issued by this function for ``sort``.
        ValueError: ``sort`` unknown or ``limit`` < 1.
    """
    if sort not in RANK_SORTS or limit < 1:
        raise ValueError("bad sort or limit")
    params = params or rt.params
    after = _decode_cursor(cursor, sort) if cursor else None
    snap = (cache or RankingCache()).snapshot(rt=rt, params=params)
    order = snap.orders.get(sort)
    if order is None:
        order = sorted(snap.scores, key=lambda s: (-_sort_value(s.score, sort), s.did))
        snap.orders[sort] = order
    start = 0
    if after is not None:
        value, did = after
        # First item strictly after (value, did) in (value desc, did asc) order: binary search.
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            v = _sort_value(order[mid].score, sort)
            if v > value or (v == value and order[mid].did <= did):
                lo = mid + 1
            else:
                hi = mid
        start = lo
    items = order[start : start + limit]
    more = start + limit < len(order)
    next_cursor = _encode_cursor(sort, _sort_value(items[-1].score, sort), items[-1].did) if more and items else None
    return RankingPage(
        sort=sort,
        as_of=snap.as_of,
        prior_mean=snap.prior_mean,
        params_version=params.version,
        items=tuple(items),
        next_cursor=next_cursor,
        total=len(order),
        aggregates=snap.aggregates,
    )
