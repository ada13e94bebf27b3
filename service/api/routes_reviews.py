"""Review endpoints: prepare, submit, read, list per service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from service.api.deps import LimiterDep, RuntimeDep
from service.api.did_path import did_from_path
from service.api.metrics import Metrics
from service.api.present import json_response, review_out
from service.api.schemas import PrepareIn, PrepareOut, ReviewOut, ReviewPage, SubmitIn
from service.domain import Reason
from service.errors import MalformedInput, OmaTrustError
from service.workflows.prepare import prepare_checked
from service.workflows.queries import review_view, service_reviews
from service.workflows.runtime import Runtime
from service.workflows.submit import accept_review

router = APIRouter(prefix="/v1", tags=["reviews"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    409: {"description": "a receipt already backs another live review"},
    422: {"description": "invalid review, proof or delegated signature"},
    503: {"description": "a check could not run (DID/DNS/RPC); retry"},
}
DidPath = Annotated[str, Path(max_length=256, description="service DID, percent-encoded (encodeURIComponent)")]


def _limit(limiter: LimiterDep, key: str) -> None:
    wait = limiter.acquire(key.lower())
    if wait > 0:
        raise HTTPException(429, "Too many requests for this attester", headers={"Retry-After": str(int(wait) + 1)})


@router.post("/reviews/prepare", response_model=PrepareOut, responses=PROBLEMS)
def prepare(body: PrepareIn, rt: RuntimeDep, limiter: LimiterDep) -> PrepareOut:
    """Check the review as submit will (everything but the signature: schema rules, deadline, each proof's
    signature, authorization and binding, self-review, replay, payment) and build the EAS `Attest` typed data
    (nonce included) for the reviewer to sign. Bare x402 offers/receipts in `proofs` are wrapped first; an
    unknown `proofType` is refused unless `allowUnsupported` is true."""
    _limit(limiter, body.attester)
    deadline = body.deadline if body.deadline is not None else int(rt.clock()) + 3600
    checked = prepare_checked(
        rt=rt,
        attester=body.attester,
        review=body.review.to_domain(),
        deadline=deadline,
        allow_unsupported=body.allow_unsupported,
    )
    prepared = checked.prepared
    return PrepareOut(
        typed_data=prepared.typed_data,
        data="0x" + prepared.data.hex(),
        recipient=prepared.recipient,
        proofs=list(checked.review.proofs),
        wrapped=list(checked.wrapped),
        evidence=checked.evidence,
        verified_purchase=checked.verified_purchase,
    )


@router.post("/reviews", response_model=ReviewOut, status_code=201, responses=PROBLEMS)
def submit(body: SubmitIn, request: Request) -> Response:
    """Submit a signed review: verified, stored and published on chain with the reviewer as attester."""
    # the hot route reads app.state itself: three dependencies cost more than a review's proof checks' look-ups
    state = request.app.state
    rt: Runtime = state.runtime
    metrics: Metrics = state.metrics
    _limit(state.limiter, body.attester)
    try:
        accepted = accept_review(
            rt=rt,
            attester=body.attester,
            data=bytes.fromhex(body.data[2:]),
            deadline=body.deadline,
            nonce=body.nonce,
            signature=body.signature,
        )
    except OmaTrustError as exc:
        metrics.submissions.labels(result=exc.reason.value).inc()
        raise
    metrics.submissions.labels(result="accepted").inc()
    if accepted.review is not None:  # just written: answered from the rows in memory (attestation pending)
        out = review_out(accepted.review, accepted.proofs, None)
    else:  # the same signed request was accepted before: its current state
        view = review_view(rt=rt, review_id=accepted.review_id)
        assert view is not None  # stored before this request
        out = review_out(view.review, view.proofs, view.outbox, view.responses)
    request.app.state.reputation_cache.discard(out.subject_normalized)
    return json_response(out, status_code=201, headers={"Location": f"/v1/reviews/{accepted.review_id}"})


@router.get("/reviews/{review_id}", response_model=ReviewOut, responses={404: {"description": "no such review"}})
def get_one(review_id: Annotated[str, Path(max_length=64)], rt: RuntimeDep) -> Response:
    view = review_view(rt=rt, review_id=review_id)
    if view is None:
        raise HTTPException(404, "No such review")
    return json_response(review_out(view.review, view.proofs, view.outbox, view.responses))


@router.get("/services/{did}/reviews", response_model=ReviewPage, responses={422: PROBLEMS[422]})
def list_for_service(
    did: DidPath,
    request: Request,
    rt: RuntimeDep,
    verified: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ReviewPage:
    """Live reviews of a service, newest first; `verified=true` for verified purchases only."""
    did = did_from_path(request)
    try:
        views, next_cursor = service_reviews(rt=rt, did=did, verified=verified, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "cursor is not one this service issued") from exc
    items = [review_out(v.review, v.proofs, v.outbox, v.responses) for v in views]
    return ReviewPage(items=items, next_cursor=next_cursor)
