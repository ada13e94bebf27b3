"""Check a review's ``evidence-pointer`` proofs: fetch the pointed-to document with the service's SSRF-safe,
bounded fetcher (``service.identity.fetcher``) and judge its ``v=1;controller=<DID>`` record
(``service.verdicts.evidence_pointer``). The artifact pipeline leaves these proofs ``unsupported``; this replaces
that outcome (submit and chain sync, through ``service.workflows.evaluate``)."""

from __future__ import annotations

from service.domain import ProofStatus, Reason, Review
from service.errors import CouldNotCheck, FetchFailed, MalformedInput
from service.identity.fetcher import Fetcher
from service.verdicts import ReviewVerdict
from service.verdicts.evidence_pointer import judge_evidence, parse_evidence, parse_pointer, url_on_subject_host
from service.verdicts.registry import CHAIN_PROOFS
from service.verdicts.review import with_chain_proofs

# What the fetcher refuses by policy (the same answer every time): the proof is invalid. Anything else it raises
# (connect, timeout, status, saturation) might pass later: indeterminate, never a downgrade.
REFUSALS = frozenset({
    Reason.FETCH_ADDRESS_REFUSED, Reason.FETCH_REDIRECT_REFUSED, Reason.FETCH_TOO_LARGE, Reason.FETCH_SCHEME_REFUSED,
})  # fmt: skip


def check_evidence_pointers(
    *, verdict: ReviewVerdict, review: Review, attester: str, fetcher: Fetcher | None, now: int
) -> ReviewVerdict:
    """The verdict with every ``evidence-pointer`` proof judged and the evidence class raised to
    ``evidence-pointer`` when one verified and nothing stronger backs the review. Never raises: a malformed proof
    or refused fetch → invalid, a failed fetch → indeterminate, a record naming someone else → unauthorized."""
    return with_chain_proofs(
        verdict=verdict, review=review, spec=CHAIN_PROOFS["evidence-pointer"], now=now,
        judge=lambda raw: pointer_verdict(raw=raw, subject=review.subject, attester=attester, fetcher=fetcher),
    )


def pointer_verdict(
    *, raw: str, subject: str, attester: str, fetcher: Fetcher | None
) -> tuple[ProofStatus, Reason | None, str]:
    """(status, reason, detail) of one ``evidence-pointer`` proof wrapper (JSON text). Never raises."""
    try:
        url = parse_pointer(raw)
    except MalformedInput as exc:
        return ProofStatus.INVALID, exc.reason, exc.detail
    if not url_on_subject_host(url=url, subject=subject):
        return ProofStatus.INVALID, Reason.EVIDENCE_HOST_MISMATCH, f"{url[:200]} is not served by {subject[:200]}"
    if fetcher is None:
        return ProofStatus.INDETERMINATE, Reason.FETCH_FAILED, "no fetcher configured"
    try:
        body = fetcher.fetch(url=url)
    except FetchFailed as exc:
        status = ProofStatus.INVALID if exc.reason in REFUSALS else ProofStatus.INDETERMINATE
        return status, exc.reason, exc.detail
    except CouldNotCheck as exc:  # e.g. LookupSaturated
        return ProofStatus.INDETERMINATE, exc.reason, exc.detail
    try:
        record = parse_evidence(body)
    except MalformedInput as exc:
        return ProofStatus.INVALID, exc.reason, exc.detail
    return judge_evidence(record=record, attester=attester, url=url[:200])
