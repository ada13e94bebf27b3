"""The proof-type registry: the one place a proof type is declared.

A review carries proofs as OMATrust wrappers ``{proofType, proofPurpose, proofObject, ...}``. For each proof type
the registry says what its object must parse as (artifact kind), when it is evaluated relative to the others
(offers first: a verified offer may authorize a receipt signer through its ``payTo``), what it is for, how it is
tied to the review (binding rule), whether it may vouch for another proof's signer, and which evidence class it
gives the review. A proof type that is not registered is stored as ``unsupported``.

Adding a proof type (e.g. ``tx-interaction``, ``evidence-pointer``) is one ``ProofTypeSpec`` in ``REGISTRY``; a
new evidence class also goes in ``EVIDENCE_CLASSES`` at its strength (its name and weight are scoring parameters:
``service.scoring.params.Evidence``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.domain import ArtifactKind, ReceiptPayload, SignedArtifact
from service.proofs import X402_PROOF_TYPES, check_binding
from service.scoring.params import Evidence
from service.verdicts.policy import ReviewPolicy

# Evidence classes of a review, strongest first. Their names and weights are the scoring parameters' ``Evidence``;
# which class a review gets is decided here.
PAYMENT_BACKED = Evidence.PAYMENT_BACKED.value  # a verified purchase whose payment was seen settled (payment.py)
VERIFIED = Evidence.VERIFIED.value  # a receipt verified and bound: a verified purchase
TX_INTERACTION = Evidence.TX_INTERACTION.value  # a successful transaction from the reviewer to the subject
UNAUTHORIZED = Evidence.UNAUTHORIZED.value  # a receipt bound with a valid signature, its signer not authorized
OFFER_ONLY = Evidence.OFFER_ONLY.value  # an authorized offer, no verified receipt
EVIDENCE_POINTER = Evidence.EVIDENCE_POINTER.value  # the subject's own host names the reviewer as a controller
NONE = Evidence.NONE.value
EVIDENCE_CLASSES: tuple[str, ...] = (PAYMENT_BACKED, VERIFIED, TX_INTERACTION, UNAUTHORIZED, OFFER_ONLY,
                                     EVIDENCE_POINTER, NONE)  # fmt: skip


class Binding(Protocol):
    """Ties a proof whose signature verified to the review that carries it; raises ``BindingFailed`` if it
    does not back that review."""

    def __call__(
        self, *, artifact: SignedArtifact, subject: str, attester: str, review_time: int, policy: ReviewPolicy
    ) -> None: ...


def bind_receipt(
    *, artifact: SignedArtifact, subject: str, attester: str, review_time: int, policy: ReviewPolicy
) -> None:
    """A receipt backs a review when it was issued for the review's subject, paid by its attester, recently.

    Raises:
        BindingFailed: SUBJECT_MISMATCH, PAYER_MISMATCH, RECEIPT_FROM_FUTURE, RECEIPT_STALE.
    """
    receipt = artifact.payload
    assert isinstance(receipt, ReceiptPayload)  # the registry binds receipts only
    check_binding(
        receipt=receipt,
        subject=subject,
        attester=attester,
        review_time=review_time,
        max_age=policy.receipt_max_age,
        skew=policy.clock_skew,
    )


@dataclass(frozen=True, slots=True)
class ProofTypeSpec:
    proof_type: str  # the wrapper's proofType
    kind: ArtifactKind  # what its proofObject must parse as
    order: int  # evaluation order within a review, lowest first
    purpose: str  # the proofPurpose it serves
    bind: Binding | None  # the rule tying it to the review; None: it is not bound to one
    vouches: bool  # verified through a trusted tier, its payTo may authorize receipt signers (offer-payto)
    purchase: bool  # verified and bound, it makes the review a verified purchase
    verified_evidence: str  # evidence class it gives when verified (and bound, when it binds)
    signed_evidence: str | None  # ... when only its signature is valid (and bound, when it binds)


REGISTRY: dict[str, ProofTypeSpec] = {
    spec.proof_type: spec
    for spec in (
        ProofTypeSpec(
            proof_type=X402_PROOF_TYPES[ArtifactKind.OFFER],
            kind=ArtifactKind.OFFER,
            order=0,
            purpose="commercial-tx",
            bind=None,
            vouches=True,
            purchase=False,
            verified_evidence=OFFER_ONLY,
            signed_evidence=None,
        ),
        ProofTypeSpec(
            proof_type=X402_PROOF_TYPES[ArtifactKind.RECEIPT],
            kind=ArtifactKind.RECEIPT,
            order=1,
            purpose="commercial-tx",
            bind=bind_receipt,
            vouches=False,
            purchase=True,
            verified_evidence=VERIFIED,
            signed_evidence=UNAUTHORIZED,
        ),
    )
}
_BY_KIND: dict[ArtifactKind, ProofTypeSpec] = {spec.kind: spec for spec in REGISTRY.values()}


@dataclass(frozen=True, slots=True)
class ChainProofSpec:
    """A proof type whose object is not a signed artifact but a pointer — to chain state (read by
    ``service.workflows.payment_check``) or to a document on the subject's host (fetched by
    ``service.workflows.evidence_pointer``); the artifact pipeline above leaves it ``unsupported`` and that check
    replaces the outcome. Re-verification keeps such outcomes as stored."""

    proof_type: str
    purpose: str
    verified_evidence: str


# OMATrust ``tx-interaction`` (PROTOCOLS.md §8): {chainId (CAIP-2), txHash}; the transaction succeeded, was sent by
# the reviewer and went to an address of the subject (rules: service.verdicts.tx_interaction).
# OMATrust ``evidence-pointer`` (proofs spec §5.3.5): {url} on the subject's host whose ``v=1;controller=<DID>``
# record names the reviewer (rules: service.verdicts.evidence_pointer). Weak evidence, its own class.
CHAIN_PROOFS: dict[str, ChainProofSpec] = {
    "tx-interaction": ChainProofSpec(
        proof_type="tx-interaction", purpose="commercial-tx", verified_evidence=TX_INTERACTION
    ),
    "evidence-pointer": ChainProofSpec(
        proof_type="evidence-pointer", purpose="shared-control", verified_evidence=EVIDENCE_POINTER
    ),
}
UNKNOWN_ORDER = max(spec.order for spec in REGISTRY.values()) + 1  # unregistered / unparsed proofs go last


def spec_for(proof_type: str) -> ProofTypeSpec | None:
    """The registered spec of ``proof_type`` (None: not a proof type this service verifies)."""
    return REGISTRY.get(proof_type)


def spec_for_kind(kind: ArtifactKind | None) -> ProofTypeSpec | None:
    """The spec of the proof type whose objects are ``kind`` artifacts (bare envelopes carry no proofType)."""
    return _BY_KIND.get(kind) if kind is not None else None


def order_of_kind(kind: ArtifactKind | None) -> int:
    """Evaluation order of an artifact of ``kind`` (see ``ProofTypeSpec.order``)."""
    spec = spec_for_kind(kind)
    return spec.order if spec is not None else UNKNOWN_ORDER


def stronger_evidence(a: str, b: str) -> str:
    """The stronger of two evidence classes."""
    return a if EVIDENCE_CLASSES.index(a) <= EVIDENCE_CLASSES.index(b) else b
