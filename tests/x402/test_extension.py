"""The offer-receipt and reviews extensions on the PyPI x402 SDK's own resource server and hook contexts (no chain):
what goes into PAYMENT-REQUIRED and PAYMENT-RESPONSE, matching the TS ``createOfferReceiptExtension``."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from x402 import x402Facilitator, x402ResourceServer
from x402.schemas import PaymentPayload, PaymentRequirements, ResourceInfo, SettleResponse
from x402.schemas.hooks import SettleResultContext

from service.domain import OfferPayload, ReceiptPayload, VerificationKey
from service.proofs import recover_eip712_signer, verify_jws
from service.proofs.parse import parse_artifact
from service.x402.offer_receipt import OFFER_RECEIPT, OfferReceiptExtension, declare_offer_receipt
from service.x402.reviews import ReviewsExtension, declare_reviews
from service.x402.signer import OfferReceiptSigner

NOW = 1_767_225_600
DID = "did:web:shop.example"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TX = "0x" + "ab" * 32


def requirement(amount: str = "10000", timeout: int = 60) -> PaymentRequirements:
    return PaymentRequirements(scheme="exact", network="eip155:84532", asset=ASSET, amount=amount,
                               pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C", max_timeout_seconds=timeout,
                               extra={"name": "USDC", "version": "2"})  # fmt: skip


def server_with(*extensions: Any) -> x402ResourceServer:
    server = x402ResourceServer(x402Facilitator())
    for extension in extensions:
        server.register_extension(extension)
    return server


def payment_required(server: x402ResourceServer, accepts: list[PaymentRequirements], declared: dict[str, Any]) -> Any:
    return asyncio.run(server.create_payment_required_response(
        accepts, ResourceInfo(url="https://shop.example/weather"), None, declared, None,
    ))  # fmt: skip


class _Request:
    class adapter:  # noqa: N801 - the SDK's attribute name
        @staticmethod
        def get_url() -> str:
            return "https://shop.example/weather?city=Paris"


class _Transport:
    request = _Request()


def settle_context(*, success: bool = True, payer: str | None = PAYER) -> SettleResultContext:
    result = SettleResponse(success=success, transaction=TX if success else "", network="eip155:84532", payer=payer)
    accepted = requirement().model_dump(by_alias=True)
    payload = PaymentPayload.model_validate({"x402Version": 2, "payload": {}, "accepted": accepted})
    return SettleResultContext(payment_payload=payload, requirements=requirement(), transport_context=_Transport(),
                               result=result)  # fmt: skip


@pytest.fixture
def eip712() -> OfferReceiptSigner:
    return OfferReceiptSigner.eip712(did=DID)


def test_one_signed_offer_per_accept_with_index_and_validity(eip712: OfferReceiptSigner) -> None:
    server = server_with(OfferReceiptExtension(signer=eip712, clock=lambda: NOW))
    accepts = [requirement(timeout=60), requirement(amount="20000", timeout=120)]
    response = payment_required(server, accepts, declare_offer_receipt())
    extension = response.extensions[OFFER_RECEIPT]
    assert set(extension) == {"info", "schema"}  # the route declaration is replaced, never leaked
    offers = extension["info"]["offers"]
    assert [o["acceptIndex"] for o in offers] == [0, 1]
    for offer, accepted, timeout in zip(offers, accepts, (60, 120), strict=True):
        artifact = parse_artifact(data=offer)
        assert recover_eip712_signer(artifact=artifact) == eip712.address
        payload = artifact.payload
        assert isinstance(payload, OfferPayload)
        assert payload.resource_url == "https://shop.example/weather"
        assert (payload.amount, payload.pay_to, payload.asset) == (accepted.amount, accepted.pay_to, accepted.asset)
        assert payload.valid_until == NOW + timeout  # maxTimeoutSeconds when the declaration says nothing


def test_declared_validity_wins_and_defaults_to_300(eip712: OfferReceiptSigner) -> None:
    ext = OfferReceiptExtension(signer=eip712, clock=lambda: NOW)
    response = payment_required(server_with(ext), [requirement()], declare_offer_receipt(offer_validity_seconds=30))
    assert response.extensions[OFFER_RECEIPT]["info"]["offers"][0]["payload"]["validUntil"] == NOW + 30
    assert ext._validity({}, object()) == 300


def test_a_requirement_that_cannot_be_signed_is_skipped(eip712: OfferReceiptSigner) -> None:
    class Flaky(OfferReceiptSigner):
        def sign_offer(self, payload: OfferPayload, *, accept_index: int | None = None) -> dict[str, Any]:
            if accept_index == 0:
                raise ValueError("HSM unavailable")
            return super().sign_offer(payload, accept_index=accept_index)

    flaky = Flaky(did=DID, format="eip712", evm_key=eip712.evm_key)
    response = payment_required(server_with(OfferReceiptExtension(signer=flaky)), [requirement(), requirement()],
                                declare_offer_receipt())  # fmt: skip
    assert [o["acceptIndex"] for o in response.extensions[OFFER_RECEIPT]["info"]["offers"]] == [1]


def test_receipt_after_success_carries_the_transaction_by_default(eip712: OfferReceiptSigner) -> None:
    ext = OfferReceiptExtension(signer=eip712, clock=lambda: NOW)
    out = ext.enrich_settlement_response({}, settle_context())  # the declaration at settlement may be empty
    assert out is not None
    receipt = parse_artifact(data=out["info"]["receipt"])
    assert isinstance(receipt.payload, ReceiptPayload)
    assert receipt.payload.transaction == TX
    assert receipt.payload.resource_url == "https://shop.example/weather?city=Paris"  # the request URL, as TS
    assert (receipt.payload.payer, receipt.payload.issued_at) == (PAYER, NOW)
    assert recover_eip712_signer(artifact=receipt) == eip712.address


def test_include_tx_hash_off_by_option_or_declaration(eip712: OfferReceiptSigner) -> None:
    off = OfferReceiptExtension(signer=eip712, include_tx_hash=False).enrich_settlement_response({}, settle_context())
    assert off is not None
    assert off["info"]["receipt"]["payload"]["transaction"] == ""
    declared = OfferReceiptExtension(signer=eip712).enrich_settlement_response(
        {"includeTxHash": False}, settle_context()
    )
    assert declared is not None
    assert declared["info"]["receipt"]["payload"]["transaction"] == ""


def test_no_receipt_when_settlement_failed_or_payer_missing(eip712: OfferReceiptSigner) -> None:
    ext = OfferReceiptExtension(signer=eip712)
    assert ext.enrich_settlement_response({}, settle_context(success=False)) is None
    assert ext.enrich_settlement_response({}, settle_context(payer=None)) is None


def test_jws_receipt_omits_an_absent_transaction_and_verifies() -> None:
    signer = OfferReceiptSigner.jws(did=DID, alg="ES256")
    out = OfferReceiptExtension(signer=signer, include_tx_hash=False).enrich_settlement_response({}, settle_context())
    assert out is not None
    artifact = parse_artifact(data=out["info"]["receipt"])
    assert artifact.kid == f"{DID}#key-1"
    segment = artifact.signature.split(".")[1]
    sent = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert "transaction" not in sent  # JWS: omitted when absent (EIP-712 sends "")
    assert sent["payer"] == PAYER
    jwk = signer.did_document()["verificationMethod"][0]["publicKeyJwk"]
    verify_jws(artifact=artifact, key=VerificationKey(id=signer.kid, controller=DID, jwk=jwk))  # raises if bad


def test_offers_are_dynamic_for_echo_validation(eip712: OfferReceiptSigner) -> None:
    assert OfferReceiptExtension(signer=eip712).dynamic_info_fields == ["offers"]


def test_reviews_extension_links(eip712: OfferReceiptSigner) -> None:
    reviews = ReviewsExtension(provider_url="https://reviews.example/", description="OMATrust")
    response = payment_required(server_with(reviews), [requirement()], declare_reviews())
    (provider,) = response.extensions["reviews"]["info"]["providers"]
    read = "https://reviews.example/v1/resources/reviews?url=https%3A%2F%2Fshop.example%2Fweather"
    assert provider == {"provider": "reviews.example", "description": "OMATrust", "read": read}
    written = reviews.enrich_settlement_response({}, settle_context())
    assert written is not None
    assert written["info"]["providers"][0]["write"] == f"https://reviews.example/r/eip155:84532/{TX}"
    assert reviews.enrich_settlement_response({}, settle_context(success=False)) is None


def test_did_document_authorizes_the_signer(eip712: OfferReceiptSigner) -> None:
    doc = eip712.did_document()
    assert doc["id"] == DID
    assert doc["assertionMethod"] == [f"{DID}#key-1"]
    assert doc["verificationMethod"][0]["blockchainAccountId"] == f"eip155:1:{eip712.address}"
    assert eip712.dns_txt() == f"v=1;controller=did:pkh:eip155:1:{eip712.address}"
