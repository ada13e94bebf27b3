"""How each evidence class of a review is shown to people: one list, read by every page, filter and badge.

A class the rules add later (e.g. ``evidence-pointer``) needs one entry here and no template change; a class missing
from the list still shows, with a label made from its name. Order: strongest first, as the rules rank them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Strength = Literal["strong", "medium", "weak", "none"]


@dataclass(frozen=True, slots=True)
class EvidenceClass:
    key: str  # the stored ``reviews.evidence`` value
    label: str  # badge text
    plain: str  # one sentence for people: what backs such a review
    strength: Strength
    backs_purchase: bool  # counted as "payment-backed" in explanations and badges


EVIDENCE_CLASSES: tuple[EvidenceClass, ...] = (
    EvidenceClass(
        "payment-backed", "Paid on chain",
        "The reviewer paid: a receipt signed by the service names them as the payer, and the payment transaction "
        "it names settled on chain.",
        "strong", True,
    ),
    EvidenceClass(
        "verified", "Verified purchase",
        "The reviewer paid: a receipt signed by the service's own key names this reviewer as the payer.",
        "strong", True,
    ),
    EvidenceClass(
        "tx-interaction", "On-chain interaction",
        "A successful transaction from the reviewer to the service is attached, but no receipt from the service.",
        "medium", False,
    ),
    EvidenceClass(
        "offer-only", "Offer seen",
        "A price offer signed by the service is attached, but no receipt shows that the reviewer paid.",
        "medium", False,
    ),
    EvidenceClass(
        "unauthorized", "Unverified signer",
        "A signed receipt or offer is attached, but its signer is not listed as a key of this service.",
        "weak", False,
    ),
    EvidenceClass(
        "evidence-pointer", "Linked to the service",
        "A page on the service's own website names the reviewer's wallet as one of its controllers: the reviewer is "
        "connected to the service, but nothing shows a purchase, so it counts like no proof.",
        "weak", False,
    ),
    EvidenceClass(
        "none", "No proof",
        "No proof of purchase is attached (or it could not be checked), so this review counts for little.",
        "none", False,
    ),
)  # fmt: skip
_BY_KEY = {c.key: c for c in EVIDENCE_CLASSES}


def evidence_class(key: str) -> EvidenceClass:
    """The display entry for a stored evidence class (a generic one for a class not in the list)."""
    known = _BY_KEY.get(key)
    if known is not None:
        return known
    label = key.replace("-", " ").replace("_", " ").strip().capitalize() or "Unknown"
    return EvidenceClass(key, label, "Evidence of a kind this page does not describe yet.", "weak", False)


def is_known(key: str) -> bool:
    return key in _BY_KEY
