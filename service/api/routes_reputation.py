"""Reputation endpoints: one service's trust score (optionally explained review by review) and a ranking."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from service.api.caching import cached
from service.api.deps import RuntimeDep
from service.api.did_path import did_from_path
from service.api.routes_erc8004 import Erc8004Out
from service.api.schemas import CamelModel
from service.dids import normalize_did
from service.domain import Reason
from service.errors import BadCursor, MalformedInput
from service.identity.cache import TtlCache
from service.scoring import Contribution, TrustScore
from service.workflows.erc8004_reputation import service_feedback
from service.workflows.ranking import RankingCache, RankSort, ranking
from service.workflows.reputation import reputation
from service.workflows.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["reputation"])
PROBLEM_422: dict[int | str, dict[str, Any]] = {422: {"description": "not a DID, or a bad query parameter/cursor"}}
DidPath = Annotated[str, Path(max_length=256, description="service DID, percent-encoded (encodeURIComponent)")]
# "stored": the score came from the maintained aggregates (or, with explain, the exact recompute over current
# aggregates); "recomputed": stored aggregates were in other scoring units (parameters changed), so it was computed
# exactly from the reviews while the service rebuilds them in the background.
AGGREGATES_HEADER = "OMATrust-Aggregates"
AGGREGATES_DOC = {"headers": {AGGREGATES_HEADER: {"description": "stored | recomputed (stale aggregates bypassed)",
                                                  "schema": {"type": "string", "enum": ["stored", "recomputed"]}}}}
# An explained answer lists at most this many contributions (largest first); the rest are counted, not listed.
EXPLAIN_MAX_CONTRIBUTIONS = 1000

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Points = Annotated[float, Field(ge=0.0, le=100.0)]
Histogram = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=5, max_length=5)]


class ContributionOut(CamelModel):
    """How one review enters the score: ``weight = evidenceWeight · decay · capScale`` (0 when superseded) and
    ``contribution = 100 · weight · (r − μ₀)/(m + n)`` score points; live contributions sum to score − 100·μ₀."""

    review_id: str
    reviewer: str
    rating: Annotated[int, Field(ge=1, le=5)]
    evidence: Literal[
        "payment-backed", "verified", "tx-interaction", "unauthorized", "offer-only", "evidence-pointer", "none"
    ]
    time: int
    superseded: bool
    attestation_uid: str | None
    evidence_weight: Annotated[float, Field(ge=0.0)]
    decay: Annotated[float, Field(ge=0.0)]
    cap_scale: Share
    weight: Annotated[float, Field(ge=0.0)]
    contribution: float


class CountsOut(CamelModel):
    """``total = live + superseded``; ``live = verified + unverified``."""

    total: Annotated[int, Field(ge=0)]
    live: Annotated[int, Field(ge=0)]
    verified: Annotated[int, Field(ge=0)]
    unverified: Annotated[int, Field(ge=0)]
    superseded: Annotated[int, Field(ge=0)]


class HistogramOut(CamelModel):
    """Live reviews per star rating, index 0 = 1★."""

    verified: Histogram
    unverified: Histogram


class TrustScoreOut(CamelModel):
    params_version: str
    as_of: int = Field(description="unix seconds the score is computed for")
    prior_mean: Share = Field(description="μ₀: decay-weighted mean rating of all verified reviews, in [0, 1]")
    score: Points = Field(description="100 × posterior mean of the rating in [0, 1]")
    lower90: Points = Field(description="100 × 10th percentile of the posterior: rank by this")
    confidence: Share = Field(description="n / (m + n), n = effective evidence, m = prior strength")
    effective_evidence: Annotated[float, Field(ge=0.0)] = Field(description="weights after decay and the cap")
    verified_weight: Annotated[float, Field(ge=0.0)]
    unverified_weight: Annotated[float, Field(ge=0.0)] = Field(description="after the unverified cap")
    unverified_cap_scale: Share = Field(description="1.0 = the cap on unverified weight did not bind")
    verified_share: Share | None = Field(description="share of the effective evidence from verified purchases")
    counts: CountsOut
    histogram: HistogramOut
    last_review_at: int | None
    # Not bounded above: the aggregate path computes the top weight and n by different float routes (± 1 ulp).
    top_reviewer_share: Annotated[float, Field(ge=0.0)] | None = Field(
        description="largest single reviewer's share of the effective evidence"
    )
    reviewer_dominates: bool = Field(description="one reviewer holds more than half the evidence (≥ 3 reviewers)")
    payment_backed_weight: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0, description="weight of the payment-backed reviews (after decay)"
    )
    top_payer_share: Annotated[float, Field(ge=0.0)] | None = Field(
        default=None, description="largest single payer's share of the payment-backed weight"
    )
    top_movers: list[ContributionOut] = Field(description="the reviews that moved the score most from the prior")


class ReputationOut(TrustScoreOut):
    did: str = Field(description="the normalized service DID")
    explained: bool = Field(description="true: computed by the exact recompute over every review (O(n))")
    contributions: list[ContributionOut] | None = Field(
        description=f"with explain=true: every review's part, largest |contribution| first (at most "
        f"{EXPLAIN_MAX_CONTRIBUTIONS}), then superseded reviews"
    )
    contributions_omitted: Annotated[int, Field(ge=0)] = Field(description="contributions beyond the listed ones")
    erc8004: Erc8004Out | None = Field(
        default=None,
        description="on-chain ERC-8004 feedback of the agents mapped to this service: a separate evidence stream, "
        "not part of the score",
    )


class RankedServiceOut(CamelModel):
    did: str
    score: Points
    lower90: Points
    confidence: Share
    effective_evidence: Annotated[float, Field(ge=0.0)]
    verified_share: Share | None
    counts: CountsOut
    last_review_at: int | None


class RankingOut(CamelModel):
    sort: Literal["lower90", "score", "reviews"]
    as_of: int
    prior_mean: Share
    params_version: str
    total: Annotated[int, Field(ge=0)] = Field(description="services ranked")
    items: list[RankedServiceOut]
    next_cursor: str | None


def contribution_out(c: Contribution) -> ContributionOut:
    return ContributionOut.model_validate(c.to_wire())


def score_fields(score: TrustScore) -> dict[str, object]:
    wire = score.to_wire()
    wire["topMovers"] = [contribution_out(m) for m in score.top_movers]
    return wire


def _ranking_cache(request: Request) -> RankingCache:
    # One per app, created on first use (nothing stateful at import time).
    cache: RankingCache | None = getattr(request.app.state, "ranking_cache", None)
    if cache is None:
        cache = request.app.state.ranking_cache = RankingCache()
    return cache


@router.get("/services/{did}/reputation", response_model=ReputationOut, responses={**PROBLEM_422, 200: AGGREGATES_DOC})
def get_reputation(
    did: DidPath,
    request: Request,
    rt: RuntimeDep,
    explain: Annotated[bool, Query(description="list every review's contribution (reads all reviews: O(n))")] = False,
) -> Response:
    """Trust score of a service DID. Reads O(1) rows whatever the number of reviews (explain=true: O(n)). A DID
    without reviews gets the prior-only score with zero counts."""
    did = did_from_path(request)
    if explain:
        body, source = _reputation_json(rt, did, explain=True)
    else:
        cache: TtlCache[str, tuple[bytes, str]] = request.app.state.reputation_cache
        body, source = cache.get_or_load(normalize_did(did), lambda: _reputation_json(rt, did, explain=False))
    # ETag + a short public Cache-Control: a CDN may serve it; If-None-Match answers 304.
    return cached(request, body, media_type="application/json", headers={AGGREGATES_HEADER: source})


def _reputation_json(rt: Runtime, did: str, *, explain: bool) -> tuple[bytes, str]:
    """The answer's bytes and where its score came from (the ``OMATrust-Aggregates`` header)."""
    rep = reputation(rt=rt, did=did, explain=explain)
    parts = rep.contributions
    listed = None if parts is None else [contribution_out(c) for c in parts[:EXPLAIN_MAX_CONTRIBUTIONS]]
    out = ReputationOut.model_validate(
        {
            **score_fields(rep.score),
            "did": rep.did,
            "explained": parts is not None,
            "contributions": listed,
            "contributionsOmitted": 0 if parts is None else max(0, len(parts) - EXPLAIN_MAX_CONTRIBUTIONS),
            "erc8004": service_feedback(engine=rt.engine, did=rep.did, erc8004_weight=rt.params.erc8004_weight),
        }
    )
    # Validated once above; returning bytes skips FastAPI's second validation + serialization of the same model.
    return out.model_dump_json(by_alias=True).encode(), rep.aggregates


@router.get("/services", response_model=RankingOut, responses={**PROBLEM_422, 200: AGGREGATES_DOC})
def list_services(
    request: Request,
    response: Response,
    rt: RuntimeDep,
    sort: Annotated[RankSort, Query(description="lower90 (default), score, or reviews (live count)")] = "lower90",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> RankingOut:
    """Services with reviews, best first. Ranking by lower90 rewards a long verified record over a few 5★s."""
    try:
        page = ranking(rt=rt, sort=sort, limit=limit, cursor=cursor, cache=_ranking_cache(request))
    except BadCursor as exc:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "cursor is not one this service issued for this sort") from exc
    response.headers[AGGREGATES_HEADER] = page.aggregates
    return RankingOut(
        sort=page.sort,
        as_of=page.as_of,
        prior_mean=page.prior_mean,
        params_version=page.params_version,
        total=page.total,
        next_cursor=page.next_cursor,
        items=[
            RankedServiceOut(
                did=item.did,
                score=item.score.score,
                lower90=item.score.lower90,
                confidence=item.score.confidence,
                effective_evidence=item.score.effective_evidence,
                verified_share=item.score.verified_share,
                counts=CountsOut.model_validate(item.score.to_wire()["counts"]),
                last_review_at=item.score.last_review_at,
            )
            for item in page.items
        ],
    )
