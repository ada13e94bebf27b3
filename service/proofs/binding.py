"""Rules that bind a verified, authorized receipt to one particular review, and offer expiry.

Replay (one receipt backs at most one live review) is enforced by the store via ``SignedArtifact.replay_key``.
"""

from __future__ import annotations

from service.dids import did_web_for_url, normalize_did
from service.domain import OfferPayload, Reason, ReceiptPayload
from service.errors import BindingFailed, MalformedInput


def check_binding(
    *, receipt: ReceiptPayload, subject: str, attester: str, review_time: int, max_age: int, skew: int
) -> None:
    """Check that ``receipt`` backs a review of ``subject`` made by ``attester`` at ``review_time`` (unix s).

    * subject: the normalized subject equals ``did:web:<host of receipt.resourceUrl>`` (both compared in the
      ``www.``-stripping normalization, which also accepts subjects written in the older form);
    * payer: ``receipt.payer`` equals the attester, case-insensitively (receipts are bearer artifacts);
    * freshness: ``issuedAt ≤ review_time + skew`` and ``review_time − issuedAt ≤ max_age``.

    Raises:
        BindingFailed: SUBJECT_MISMATCH, PAYER_MISMATCH, RECEIPT_FROM_FUTURE, RECEIPT_STALE.
    """
    try:
        service_did = did_web_for_url(receipt.resource_url)
    except MalformedInput:
        raise BindingFailed(Reason.SUBJECT_MISMATCH, "receipt resourceUrl has no host") from None
    if normalize_did(subject) != normalize_did(service_did):
        raise BindingFailed(Reason.SUBJECT_MISMATCH, f"subject {subject!r} is not {service_did!r}")
    if receipt.payer.lower() != attester.lower():
        raise BindingFailed(Reason.PAYER_MISMATCH, f"receipt payer {receipt.payer} is not the attester {attester}")
    if receipt.issued_at > review_time + skew:
        raise BindingFailed(Reason.RECEIPT_FROM_FUTURE, f"receipt issuedAt {receipt.issued_at} > {review_time}+{skew}")
    if review_time - receipt.issued_at > max_age:
        raise BindingFailed(Reason.RECEIPT_STALE, f"receipt is older than {max_age} s at review time")


def offer_expired(*, offer: OfferPayload, now: int, skew: int = 0) -> bool:
    """True when the offer has a ``validUntil`` (0 = none) and ``now`` is past it by more than ``skew``."""
    return offer.valid_until != 0 and now > offer.valid_until + skew


def check_offer_not_expired(*, offer: OfferPayload, now: int, skew: int = 0) -> None:
    """Raise when :func:`offer_expired`.

    Raises:
        BindingFailed: OFFER_EXPIRED.
    """
    if offer_expired(offer=offer, now=now, skew=skew):
        raise BindingFailed(Reason.OFFER_EXPIRED, f"offer expired at {offer.valid_until}")
