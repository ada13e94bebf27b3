"""Judging a stored review again: the fresh verdict, "authorized as of issuedAt", and what a re-check may replace.

The fresh verdict is :func:`service.verdicts.review.judge_review` over the *current* evidence. Then this rule is
applied to the proofs the current evidence does not verify:

    A signer whose stored verdict was established with evidence snapshot E (``evidence_hash``), observed at
    ``t_E`` (``checked_at``), stays authorized for an artifact of reference time ``T`` (a receipt's ``issuedAt``;
    an offer's review time) when
      1. every fresh look-up succeeded (otherwise the result is ``indeterminate`` and the stored verdict is kept),
      2. E is stored and, checked again with the same pure ``authorize``, still authorizes the signer (for a JWS
         whose key left the document, the key is read from E and the signature verified with it),
      3. ``T <= t_E + skew`` — we saw the signer published at (or after) the time the artifact was made. The fresh
         evidence that lacks the signer is newer than E, so it cannot show the signer was already absent at ``T``.
    Otherwise the fresh verdict stands. Revocation is prospective: removing a key from did.json (or a controller
    from DNS) does not retract receipts it signed before; a stored verdict whose evidence predates the artifact
    (``T > t_E + skew``) proves nothing about ``T`` and is not kept.

An ``indeterminate`` judgement never replaces a stored verdict: the stored one is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from service.domain import (
    ArtifactFormat,
    ArtifactKind,
    AuthTier,
    ProofOutcome,
    ProofStatus,
    Reason,
    ReceiptPayload,
    SignedArtifact,
    VerificationKey,
)
from service.errors import OmaTrustError, Unauthorized
from service.proofs import verify_jws
from service.verdicts.artifact import vouching_signer
from service.verdicts.authorize import authorize
from service.verdicts.evidence import SNAPSHOT_TIERS
from service.verdicts.onchain import ONCHAIN_TIERS
from service.verdicts.policy import ReviewPolicy
from service.verdicts.review import (
    ProofEvaluation,
    ReviewVerdict,
    bind_evaluation,
    evaluation_order,
    summarize,
    with_store_facts,
)
from service.verdicts.sources import KeySource, SnapshotSource

# Fresh JWS failures that a key rotated out of (or replaced in) the document explains: the stored snapshot may
# still hold the key the artifact was signed with.
_JWS_KEY_GONE = frozenset(
    {Reason.KEY_NOT_FOUND, Reason.SIGNATURE_INVALID, Reason.ALG_KEY_MISMATCH, Reason.UNSUPPORTED_KEY_TYPE}
)
_SNAPSHOT_TIER_VALUES = frozenset(t.value for t in SNAPSHOT_TIERS)
_ONCHAIN_TIER_VALUES = frozenset(t.value for t in ONCHAIN_TIERS)
_BINDING_REASONS = frozenset(
    {Reason.SUBJECT_MISMATCH, Reason.PAYER_MISMATCH, Reason.RECEIPT_FROM_FUTURE, Reason.RECEIPT_STALE,
     Reason.RECEIPT_REPLAYED, Reason.SELF_REVIEW}
)  # fmt: skip


class StoredProof(Protocol):
    """The stored verdict of one proof (plain column values, as the store reads them)."""

    @property
    def position(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def signature_valid(self) -> bool: ...
    @property
    def signer(self) -> str | None: ...
    @property
    def tier(self) -> str | None: ...
    @property
    def replay_key(self) -> str | None: ...
    @property
    def bound(self) -> bool: ...
    @property
    def checked_at(self) -> int: ...
    @property
    def evidence_hash(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StoredReview:
    """What a review was, as re-judging needs it."""

    subject: str
    attester: str
    review_time: int
    problem: str | None


@dataclass(frozen=True, slots=True)
class Rejudged:
    verdict: ReviewVerdict  # the final verdict (stored verdicts kept where the re-check was indeterminate)
    kept: frozenset[int]  # positions whose re-check was indeterminate (stored verdict kept)


def rejudge(
    *,
    fresh: ReviewVerdict,
    stored: Sequence[StoredProof],
    review: StoredReview,
    keys: KeySource,
    snapshots: SnapshotSource,
    policy: ReviewPolicy,
) -> Rejudged:
    """The final verdict of a stored review from its fresh verdict (module docstring). ``keys`` resolves kids
    against the current evidence; ``snapshots`` reads the stored evidence. Never raises for bad evidence."""
    stored_at = {sp.position: sp for sp in stored}
    finals: dict[int, ProofEvaluation] = {}
    kept: set[int] = set()
    trusted_offers: list[tuple[SignedArtifact, str]] = []
    replaced = False
    # Offers first: an offer authorized only as of its time may still vouch for a receipt signer (offer-payto).
    ordered = fresh.proofs if len(fresh.proofs) < 2 else sorted(fresh.proofs, key=evaluation_order)
    for original in ordered:
        p = original
        sp = stored_at.get(p.position)
        if (
            sp is not None
            and p.artifact is not None
            and p.outcome.status
            not in (
                ProofStatus.VERIFIED,
                ProofStatus.INDETERMINATE,
            )
        ):
            p = authorized_as_of(
                p, sp, review=review, keys=keys, snapshots=snapshots, trusted_offers=trusted_offers, policy=policy
            )
        if sp is not None and sp.bound and p.binding_reason is Reason.PAYER_MISMATCH:
            # Stored bound although payer ≠ attester: bound through an on-chain payer link as of the review's time
            # (service.verdicts.onchain.payer_link), which later chain state cannot undo; re-verification does not
            # read the attestations, so the stored binding stands.
            p = replace(p, bound=True, binding_reason=None)
        if (signer := vouching_signer(p.artifact, p.outcome)) is not None and p.artifact is not None:
            trusted_offers.append((p.artifact, signer))
        if p.outcome.status is ProofStatus.INDETERMINATE and sp is not None:
            kept.add(p.position)
            p = stored_evaluation(sp, p)
        replaced = replaced or p is not original
        finals[p.position] = p

    replayed = {sp.position for sp in stored if sp.reason == Reason.RECEIPT_REPLAYED.value}
    final = with_store_facts(
        verdict=summarize(proofs=tuple(finals[i] for i in sorted(finals))) if replaced else fresh,
        attester=review.attester,
        replayed_positions=replayed - kept,
        problem=review.problem,
    )
    return Rejudged(final, frozenset(kept))


def authorized_as_of(
    p: ProofEvaluation,
    sp: StoredProof,
    *,
    review: StoredReview,
    keys: KeySource,
    snapshots: SnapshotSource,
    trusted_offers: Sequence[tuple[SignedArtifact, str]],
    policy: ReviewPolicy,
) -> ProofEvaluation:
    """Apply the "authorized as of issuedAt" rule to a proof the fresh evidence did not verify. Returns ``p``
    unchanged when the rule does not apply."""
    artifact = p.artifact
    if artifact is None:
        return p
    if sp.tier in _ONCHAIN_TIER_VALUES and sp.status == ProofStatus.VERIFIED.value and p.outcome.signature_valid:
        # What the chain said as of issuedAt cannot change later (revocation is prospective; re-verification does
        # not read the attestations): the stored on-chain authorization stands.
        onchain = replace(p.outcome, status=ProofStatus.VERIFIED, reason=None, tier=AuthTier(sp.tier),
                          evidence_hash=sp.evidence_hash,
                          detail=f"authorized as of issuedAt by attestation 0x{sp.evidence_hash}")  # fmt: skip
        return _rebind(replace(p, outcome=onchain), review=review, policy=policy)
    outcome = p.outcome
    if sp.tier == AuthTier.OFFER_PAYTO.value:
        return _via_offer(p, review=review, trusted_offers=trusted_offers, policy=policy)
    if sp.tier not in _SNAPSHOT_TIER_VALUES or not sp.evidence_hash:
        return p
    evidence_hash = sp.evidence_hash
    document = snapshots.snapshot_document(evidence_hash=evidence_hash)
    record = snapshots.snapshot_controllers(evidence_hash=evidence_hash)
    if document is None and record is None:
        return p  # no stored evidence: nothing to judge "as of" with
    payload = artifact.payload
    reference = payload.issued_at if isinstance(payload, ReceiptPayload) else review.review_time
    if reference > sp.checked_at + policy.clock_skew:
        return p  # the evidence was observed before the artifact existed: it says nothing about its time

    signer: str | None = outcome.signer if outcome.signature_valid else None
    key: VerificationKey | None = None
    if artifact.format is ArtifactFormat.JWS:
        kid = artifact.kid or ""
        if signer is not None:
            try:
                key = keys.resolve_key(kid=kid)[0]
            except OmaTrustError:
                key = None
        elif outcome.reason in _JWS_KEY_GONE and document is not None:
            try:
                key = snapshots.snapshot_key(evidence_hash=evidence_hash, kid=kid)
                verify_jws(artifact=artifact, key=key)
            except OmaTrustError:
                return p  # the stored document does not verify it either: the fresh verdict stands
            signer = kid
    if signer is None:
        return p
    try:
        tier, found_hash = authorize(artifact=artifact, signer=signer, key=key, document=document, controllers=record)
    except Unauthorized:
        return p
    as_of = ProofOutcome(
        status=ProofStatus.VERIFIED,
        reason=None,
        kind=artifact.kind,
        format=artifact.format,
        signature_valid=True,
        signer=signer,
        tier=tier,
        replay_key=artifact.replay_key,
        checked_at=sp.checked_at,  # the time the evidence that authorizes it was observed
        evidence_hash=found_hash,
        detail=f"authorized as of {reference} by evidence observed at {sp.checked_at}; not in the current evidence",
    )
    return _rebind(replace(p, outcome=as_of), review=review, policy=policy)


def stored_evaluation(sp: StoredProof, p: ProofEvaluation) -> ProofEvaluation:
    """The stored verdict of a proof, as an evaluation (used when the re-check was indeterminate)."""
    stored_reason = Reason(sp.reason) if sp.reason is not None and sp.reason in Reason._value2member_map_ else None
    is_binding = stored_reason in _BINDING_REASONS
    outcome = ProofOutcome(
        status=ProofStatus(sp.status),
        reason=None if is_binding else stored_reason,
        kind=ArtifactKind(sp.kind) if sp.kind else None,
        format=ArtifactFormat(sp.format) if sp.format else None,
        signature_valid=sp.signature_valid,
        signer=sp.signer,
        tier=AuthTier(sp.tier) if sp.tier else None,
        replay_key=sp.replay_key,
        checked_at=sp.checked_at,
        evidence_hash=sp.evidence_hash,
    )
    return replace(p, outcome=outcome, bound=sp.bound, binding_reason=stored_reason if is_binding else None)


def _via_offer(
    p: ProofEvaluation,
    *,
    review: StoredReview,
    trusted_offers: Sequence[tuple[SignedArtifact, str]],
    policy: ReviewPolicy,
) -> ProofEvaluation:
    artifact, outcome = p.artifact, p.outcome
    if artifact is None or not outcome.signature_valid or not outcome.signer or not trusted_offers:
        return p
    try:
        tier, evidence_hash = authorize(
            artifact=artifact, signer=outcome.signer, key=None, document=None, controllers=None, offers=trusted_offers
        )
    except Unauthorized:
        return p
    as_of = replace(outcome, status=ProofStatus.VERIFIED, reason=None, tier=tier, evidence_hash=evidence_hash,
                    detail="authorized through an offer verified as of its time")  # fmt: skip
    return _rebind(replace(p, outcome=as_of), review=review, policy=policy)


def _rebind(p: ProofEvaluation, *, review: StoredReview, policy: ReviewPolicy) -> ProofEvaluation:
    """Binding for a proof whose signature was only verified now (it was not checked with the fresh key); its
    detail keeps saying why it is authorized."""
    bound = bind_evaluation(
        p, subject=review.subject, attester=review.attester, review_time=review.review_time, policy=policy
    )
    return replace(bound, outcome=p.outcome)
