"""Review ⇄ receipt binding rules and offer expiry."""

from __future__ import annotations

import pytest

from service.domain import OfferPayload, Reason, ReceiptPayload
from service.errors import BindingFailed
from service.proofs import check_binding, check_offer_not_expired, offer_expired

PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
T = 1_700_000_000
DAY = 86_400


def receipt(url: str = "https://api.example.com/premium?x=1", payer: str = PAYER, issued_at: int = T) -> ReceiptPayload:
    return ReceiptPayload(1, "eip155:8453", url, payer, issued_at, "")


def bind(r: ReceiptPayload, subject: str = "did:web:api.example.com", attester: str = PAYER, at: int = T + 60) -> None:
    check_binding(receipt=r, subject=subject, attester=attester, review_time=at, max_age=30 * DAY, skew=300)


def reason_of(**kwargs: object) -> Reason:
    with pytest.raises(BindingFailed) as info:
        bind(**kwargs)  # type: ignore[arg-type]
    return info.value.reason


def test_bound() -> None:
    bind(receipt())


@pytest.mark.parametrize(
    ("url", "subject"),
    [
        ("https://api.example.com/x", " did:web:API.Example.com. "),  # trimmed, host lower-cased, trailing dot
        ("https://www.example.com/x", "did:web:example.com"),  # www. stripped on the resource side
        ("https://example.com/x", "did:web:www.example.com"),  # older subject written with www.
        ("https://localhost:4021/x", "did:web:localhost%3A4021"),  # port is part of the service DID
    ],
)
def test_subject_normalizations_match(url: str, subject: str) -> None:
    bind(receipt(url=url), subject=subject)


@pytest.mark.parametrize(
    ("url", "subject"),
    [
        ("https://api.example.com/x", "did:web:example.com"),
        ("https://api.example.com/x", "did:web:api.example.com:path"),
        ("https://localhost:4021/x", "did:web:localhost"),
        ("https://api.example.com/x", "did:pkh:eip155:1:" + PAYER),
        ("no host", "did:web:api.example.com"),
    ],
)
def test_subject_mismatch(url: str, subject: str) -> None:
    assert reason_of(r=receipt(url=url), subject=subject) is Reason.SUBJECT_MISMATCH


def test_payer_case_insensitive_and_mismatch() -> None:
    bind(receipt(payer=PAYER.lower()), attester=PAYER.upper().replace("0X", "0x"))
    assert reason_of(r=receipt(), attester="0x" + "12" * 20) is Reason.PAYER_MISMATCH


def test_freshness_edges() -> None:
    bind(receipt(issued_at=T + 300), at=T)  # exactly at the skew: allowed
    assert reason_of(r=receipt(issued_at=T + 301), at=T) is Reason.RECEIPT_FROM_FUTURE
    bind(receipt(issued_at=T), at=T + 30 * DAY)  # exactly max_age old: allowed
    assert reason_of(r=receipt(issued_at=T), at=T + 30 * DAY + 1) is Reason.RECEIPT_STALE


def test_offer_expiry() -> None:
    offer = OfferPayload(1, "https://a.example/", "exact", "n", "a", "p", "1", T)
    assert not offer_expired(offer=offer, now=T)
    assert offer_expired(offer=offer, now=T + 1)
    assert not offer_expired(offer=offer, now=T + 10, skew=10)
    never = OfferPayload(1, "https://a.example/", "exact", "n", "a", "p", "1", 0)
    assert not offer_expired(offer=never, now=2**40)
    with pytest.raises(BindingFailed) as info:
        check_offer_not_expired(offer=offer, now=T + 1)
    assert info.value.reason is Reason.OFFER_EXPIRED
    check_offer_not_expired(offer=never, now=T)
