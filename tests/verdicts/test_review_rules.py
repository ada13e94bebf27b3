"""``service.verdicts`` with in-memory look-up sources: the registry's order and evidence classes, the evidence
formats, and the Protocols (plain classes satisfy them; no ``service.identity`` involved). The same rules against
the real loopback did:web host and DNS server: tests/workflows/test_verify.py and tests/workflows/test_reverify.py."""

from __future__ import annotations

import json

import pytest

from service.domain import (
    ArtifactKind,
    AuthTier,
    ControllerRecord,
    DidDocument,
    OfferPayload,
    ProofStatus,
    Reason,
    ReceiptPayload,
    Review,
    VerificationKey,
)
from service.errors import CheckFailed, DnsFailed
from service.proofs import (
    evm_address,
    parse_artifact,
    proof_wrapper,
    sign_offer_eip712,
    sign_receipt_eip712,
)
from service.verdicts import REGISTRY, ReviewPolicy, ReviewVerdict, authorize, judge_review
from service.verdicts.evidence import (
    controller_host,
    controllers_hash,
    dns_evidence,
    read_dns_evidence,
)
from service.verdicts.registry import EVIDENCE_CLASSES, spec_for_kind

NOW = 1_750_000_000
SERVICE = "did:web:shop.example"
URL = "https://shop.example/item"
SERVICE_KEY = b"\x11" * 32  # listed in the service's document
MERCHANT_KEY = b"\x22" * 32  # payTo of the offer: authorized only through it
PAYER = evm_address(private_key=b"\x33" * 32).lower()


class Documents:
    """A ``DocumentSource`` over a dict; counts look-ups."""

    def __init__(self, *docs: DidDocument) -> None:
        self.docs = {d.id: d for d in docs}
        self.calls: list[str] = []

    def resolve_document(self, *, did: str) -> DidDocument:
        self.calls.append(did)
        if did not in self.docs:
            raise CheckFailed(Reason.KEY_NOT_FOUND, did)
        return self.docs[did]

    def resolve_key(self, *, kid: str) -> tuple[VerificationKey, DidDocument]:
        raise CheckFailed(Reason.KEY_NOT_FOUND, kid)


class NoDns:
    def lookup(self, *, domain: str) -> ControllerRecord | None:
        raise DnsFailed(Reason.DNS_FAILED, domain)


def service_document() -> DidDocument:
    key = VerificationKey(id=f"{SERVICE}#k", controller=SERVICE, address=evm_address(private_key=SERVICE_KEY))
    return DidDocument(id=SERVICE, keys=(key,), assertion_method=(), snapshot_hash="ab" * 32)


def offer() -> str:
    payload = OfferPayload(1, URL, "exact", "eip155:8453", "0x" + "aa" * 20,
                           evm_address(private_key=MERCHANT_KEY), "1000", NOW + 600)  # fmt: skip
    artifact = sign_offer_eip712(payload=payload, private_key=SERVICE_KEY)
    return json.dumps(proof_wrapper(artifact=artifact, kind=ArtifactKind.OFFER))


def receipt(payer: str = PAYER) -> str:
    payload = ReceiptPayload(1, "eip155:8453", URL, payer, NOW - 60, "")
    artifact = sign_receipt_eip712(payload=payload, private_key=MERCHANT_KEY)
    return json.dumps(proof_wrapper(artifact=artifact, kind=ArtifactKind.RECEIPT))


def judge(*proofs: str, attester: str = PAYER, documents: Documents | None = None) -> ReviewVerdict:
    return judge_review(
        review=Review(SERVICE, "", 5, "", (), proofs),
        attester=attester,
        review_time=NOW,
        now=NOW,
        documents=documents or Documents(service_document()),
        controllers=NoDns(),
        policy=ReviewPolicy(),
    )


def test_registry_names_are_the_wrapper_names_the_parser_reads() -> None:
    for name, spec in REGISTRY.items():
        wrapper = json.loads(offer() if spec.kind is ArtifactKind.OFFER else receipt())
        assert wrapper["proofType"] == name
        assert parse_artifact(data=wrapper).kind is spec.kind


def test_offers_are_judged_first_whatever_the_position() -> None:
    # The receipt's signer is only the payTo of the offer: it is authorized only when the offer was judged first.
    verdict = judge(receipt(), offer())
    assert [p.proof_type for p in verdict.proofs] == ["x402-receipt", "x402-offer"]
    assert verdict.proofs[0].outcome.tier is AuthTier.OFFER_PAYTO
    assert (verdict.verified_purchase, verdict.evidence) == (True, "verified")


def test_without_the_offer_the_receipt_is_unauthorized_and_the_class_says_so() -> None:
    verdict = judge(receipt())
    (p,) = verdict.proofs
    # DNS could not be checked, so the signer is not known to be unauthorized: indeterminate, never negative.
    assert (p.outcome.status, p.outcome.reason, p.bound) == (ProofStatus.INDETERMINATE, Reason.DNS_FAILED, True)
    assert (verdict.verified_purchase, verdict.evidence) == (False, "unauthorized")


def test_an_offer_alone_is_offer_only_and_an_unbound_receipt_adds_nothing() -> None:
    assert judge(offer()).evidence == "offer-only"
    other = evm_address(private_key=b"\x44" * 32).lower()
    verdict = judge(offer(), receipt(payer=other))
    assert verdict.proofs[1].binding_reason is Reason.PAYER_MISMATCH
    assert (verdict.verified_purchase, verdict.evidence) == (False, "offer-only")


def test_unregistered_and_broken_proofs() -> None:
    verdict = judge('{"proofType": "tx-interaction", "proofObject": {}}', "not json")
    first, second = verdict.proofs
    assert (first.outcome.status, first.outcome.reason) == (ProofStatus.UNSUPPORTED, Reason.UNSUPPORTED_PROOF_TYPE)
    assert (second.outcome.status, second.outcome.reason) == (ProofStatus.INVALID, Reason.MALFORMED_JSON)
    assert verdict.evidence == "none"


def test_evidence_classes_are_ordered_strongest_first() -> None:
    assert EVIDENCE_CLASSES[-1] == "none"
    receipt_spec = spec_for_kind(ArtifactKind.RECEIPT)
    offer_spec = spec_for_kind(ArtifactKind.OFFER)
    assert receipt_spec is not None
    assert offer_spec is not None
    assert offer_spec.order < receipt_spec.order
    assert EVIDENCE_CLASSES.index(receipt_spec.verified_evidence) < EVIDENCE_CLASSES.index(offer_spec.verified_evidence)


def test_the_document_is_looked_up_once_per_tier_and_not_when_not_needed() -> None:
    documents = Documents(service_document())
    judge(offer(), documents=documents)
    assert documents.calls == [SERVICE]


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://Shop.Example./x", "shop.example"), ("http://localhost:4021/x", "localhost")],
)
def test_controller_host(url: str, host: str) -> None:
    assert controller_host(url) == host


def test_dns_evidence_round_trips_and_its_hash_is_the_one_authorization_reports() -> None:
    controller = f"did:pkh:eip155:1:{evm_address(private_key=MERCHANT_KEY)}"
    record = ControllerRecord(domain="shop.example", record_name="_controllers.shop.example",
                              controllers=(controller, "did:web:other.example"))  # fmt: skip
    kept = dns_evidence(record)
    assert read_dns_evidence(kept.text) == record
    assert (kept.kind, kept.did, kept.evidence_hash) == ("dns-txt", "did:web:shop.example", controllers_hash(record))
    artifact = parse_artifact(data=json.loads(receipt()))
    signer = evm_address(private_key=MERCHANT_KEY)
    assert authorize(artifact=artifact, signer=signer, key=None, document=None, controllers=record) == (
        AuthTier.DNS_TXT,
        kept.evidence_hash,
    )
