"""Judge a review's proofs with the service's look-ups: the ``service.identity`` resolvers handed to the review
verdict of ``service.verdicts`` (used by submit and chain sync; re-verification judges from stored evidence)."""

from __future__ import annotations

from service.domain import Review
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.verdicts import ReviewPolicy, ReviewVerdict, judge_review
from service.verdicts.onchain import OnchainContext
from service.workflows.evidence_pointer import check_evidence_pointers
from service.workflows.verify import local_keys

__all__ = ["ReviewPolicy", "evaluate_review"]  # ReviewPolicy: re-exported for the callers that build a policy


def evaluate_review(
    *,
    review: Review,
    attester: str,
    review_time: int,
    now: int,
    resolver: DidResolver | None,
    controllers: ControllerResolver | None,
    policy: ReviewPolicy,
    onchain: OnchainContext | None = None,
) -> ReviewVerdict:
    """Verify every proof of ``review`` and bind it to the review (``service.verdicts.judge_review``), then judge its
    ``evidence-pointer`` proofs by fetching their documents (``service.workflows.evidence_pointer``). Never
    raises for a bad proof: bad proofs get outcomes."""
    verdict = judge_review(
        review=review,
        attester=attester,
        review_time=review_time,
        now=now,
        documents=resolver,
        controllers=controllers,
        policy=policy,
        local_keys=local_keys(resolver),
        onchain=onchain,
    )
    fetcher = resolver.fetcher if resolver is not None else None
    return check_evidence_pointers(verdict=verdict, review=review, attester=attester, fetcher=fetcher, now=now)
