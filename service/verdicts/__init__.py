"""PURE verdicts: every rule that decides what a proof and a review prove, in one place.

* ``registry`` — the proof types (the one place a proof type is declared) and the evidence classes;
* ``artifact`` — the artifact verdict (parse → signature → authorization tiers → ``ProofOutcome``);
* ``authorize`` — the authorization tiers;
* ``onchain`` / ``anchors`` — OMATrust Key Binding, Controller Witness and payer links; the trust anchors;
* ``responses`` / ``witnessing`` — who may answer a review; what a witness may attest;
* ``review`` — the review verdict (binding, verified purchase, evidence class, self-review, store facts);
* ``as_of`` — judging a stored review again ("authorized as of issuedAt", indeterminate keeps the stored verdict);
* ``validation`` — the review's field rules (userreview schema);
* ``evidence`` — the evidence formats (DNS evidence text and hash, the host key, kept documents);
* ``sources`` — the look-ups a verdict needs, as Protocols (satisfied by ``service.identity`` and by stored evidence);
* ``policy`` — the knobs of those rules.

Takes bytes, look-up Protocols and ``now``; imports no I/O library and no I/O package of this service.
"""

from __future__ import annotations

from .artifact import OFFER_TRUST_TIERS, ArtifactData, Checked, check_artifact, check_in_order, vouching_signer
from .as_of import Rejudged, StoredProof, StoredReview, rejudge
from .authorize import authorize, service_did_for
from .policy import ReviewPolicy
from .registry import EVIDENCE_CLASSES, REGISTRY, ProofTypeSpec, spec_for, spec_for_kind
from .review import (
    ProofEvaluation,
    ReviewVerdict,
    is_self_review,
    judge_review,
    raise_for_problem,
    summarize,
    with_store_facts,
)
from .sources import ControllerSource, DocumentSource, KeySource, SnapshotSource
from .validation import validate_review

__all__ = [
    "EVIDENCE_CLASSES",
    "OFFER_TRUST_TIERS",
    "REGISTRY",
    "ArtifactData",
    "Checked",
    "ControllerSource",
    "DocumentSource",
    "KeySource",
    "ProofEvaluation",
    "ProofTypeSpec",
    "Rejudged",
    "ReviewPolicy",
    "ReviewVerdict",
    "SnapshotSource",
    "StoredProof",
    "StoredReview",
    "authorize",
    "check_artifact",
    "check_in_order",
    "is_self_review",
    "judge_review",
    "raise_for_problem",
    "rejudge",
    "service_did_for",
    "spec_for",
    "spec_for_kind",
    "summarize",
    "validate_review",
    "vouching_signer",
    "with_store_facts",
]
