"""Real purchases on anvil through our Python merchant (PyPI x402 middleware + our extensions) and the SDK
facilitator, paid by `service.x402.client.pay`, reviewed on a real `omatrust serve`; plus the refusals."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from service.domain import ReceiptPayload
from service.errors import PaymentRefused
from service.proofs import recover_eip712_signer
from service.proofs.parse import parse_artifact
from service.x402.client import pay, review
from tests.support.anvil import free_port
from tests.x402.support import PRICE, PaymentChain, Served, Service, python_merchant

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


@pytest.mark.parametrize(("fmt", "slot"), [("eip712", 0), ("jws", 1)])  # ids stay equal across xdist workers
def test_pay_then_review_is_a_payment_backed_verified_purchase(
    chain: PaymentChain, service: Service, fmt: str, slot: int, tmp_path: Path
) -> None:
    port = service.merchant_ports[slot]
    app, config = python_merchant(chain, port=port, signer_format=fmt, review_provider=service.base)
    payer = chain.payer()
    before_payer, before_merchant = chain.balance(payer.address), chain.balance(config.pay_to)
    with Served(app, port):
        result = pay(url=config.resource_url, account=payer, rpc_urls={chain.token.network: chain.node.url},
                     out_dir=tmp_path)  # fmt: skip
        # a real transferWithAuthorization: balances move by exactly the price
        assert chain.balance(payer.address) == before_payer - PRICE
        assert chain.balance(config.pay_to) == before_merchant + PRICE
        receipt = parse_artifact(data=result.receipt or {})
        assert isinstance(receipt.payload, ReceiptPayload)
        assert receipt.payload.transaction == result.transaction  # includeTxHash survived 402 → settlement
        assert receipt.payload.payer == payer.address
        tx = chain.w3.eth.get_transaction_receipt(result.transaction)
        assert tx["status"] == 1
        # artifacts written exactly as received
        assert json.loads((tmp_path / "receipt.json").read_text()) == result.receipt
        assert json.loads((tmp_path / "offer.json").read_text()) == result.offer
        assert result.review_url == f"{service.base}/r/{chain.token.network}/{result.transaction}"
        posted = review(receipt=result.receipt or {}, offer=result.offer, rating=5, text="sunny as promised",
                        account=payer, api=service.base)  # fmt: skip
    assert posted["verifiedPurchase"] is True
    assert posted["proofs"][0]["status"] == "verified"
    assert posted["proofs"][0]["payment"]["transaction"] == result.transaction


def _tampering(app: Any, *, header: str, change: Any) -> Any:
    """Wrap an ASGI app: rewrite one base64-JSON response header (PAYMENT-REQUIRED / PAYMENT-RESPONSE)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.decode().lower() == header.lower():
                        decoded = json.loads(base64.b64decode(value))
                        value = base64.b64encode(json.dumps(change(decoded)).encode())
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, rewrite)

    return wrapped


def _offers(required: dict[str, Any]) -> list[dict[str, Any]]:
    return required["extensions"]["offer-receipt"]["info"]["offers"]


def _malformed(required: dict[str, Any]) -> dict[str, Any]:
    _offers(required)[0]["payload"]["amount"] = 12345  # a number where the spec wants a decimal string
    return required


def _unsigned(required: dict[str, Any]) -> dict[str, Any]:
    del _offers(required)[0]["signature"]
    return required


def _no_receipt(settlement: dict[str, Any]) -> dict[str, Any]:
    settlement["extensions"].pop("offer-receipt")
    return settlement


@pytest.mark.parametrize(
    ("header", "change", "code", "paid"),
    [
        ("PAYMENT-REQUIRED", _malformed, "offer-invalid", False),
        ("PAYMENT-REQUIRED", _unsigned, "offer-invalid", False),
        ("PAYMENT-RESPONSE", _no_receipt, "no-receipt", True),
    ],
    ids=["malformed-offer", "unsigned-offer", "no-receipt"],
)
def test_bad_merchant_answers_are_refused(
    chain: PaymentChain, header: str, change: Any, code: str, paid: bool, tmp_path: Path
) -> None:
    port = free_port()
    app, config = python_merchant(chain, port=port)
    payer = chain.payer()
    before = chain.balance(payer.address)
    with Served(_tampering(app, header=header, change=change), port), pytest.raises(PaymentRefused) as refused:
        pay(url=config.resource_url, account=payer, rpc_urls={chain.token.network: chain.node.url}, out_dir=tmp_path)
    assert refused.value.code == code
    assert refused.value.paid is paid
    assert chain.balance(payer.address) == before - (PRICE if paid else 0)  # refused before signing: nothing paid
    assert not (tmp_path / "receipt.json").exists()


def test_receipt_for_another_payer_is_refused(chain: PaymentChain, tmp_path: Path) -> None:
    port = free_port()
    app, config = python_merchant(chain, port=port)
    someone_else = Account.create().address

    def swap_payer(settlement: dict[str, Any]) -> dict[str, Any]:
        receipt = settlement["extensions"]["offer-receipt"]["info"]["receipt"]
        wire = receipt["payload"]
        payload = ReceiptPayload(version=1, network=wire["network"], resource_url=wire["resourceUrl"],
                                 payer=someone_else, issued_at=wire["issuedAt"],
                                 transaction=wire["transaction"])  # fmt: skip
        settlement["extensions"]["offer-receipt"]["info"]["receipt"] = config.signer.sign_receipt(payload)
        return settlement

    payer = chain.payer()
    tampered = _tampering(app, header="PAYMENT-RESPONSE", change=swap_payer)
    with Served(tampered, port), pytest.raises(PaymentRefused) as refused:
        pay(url=config.resource_url, account=payer, rpc_urls={chain.token.network: chain.node.url}, out_dir=tmp_path)
    assert refused.value.code == "receipt-payer-mismatch"
    assert not (tmp_path / "receipt.json").exists()


def test_amount_above_max_is_refused_before_signing(chain: PaymentChain) -> None:
    port = free_port()
    app, config = python_merchant(chain, port=port, amount=2_000_000)
    payer = chain.payer()
    before = chain.balance(payer.address)
    with Served(app, port), pytest.raises(PaymentRefused) as refused:
        pay(url=config.resource_url, account=payer, rpc_urls={chain.token.network: chain.node.url})
    assert refused.value.code == "amount-too-high"
    assert chain.balance(payer.address) == before


def test_network_without_rpc_is_refused_before_signing(chain: PaymentChain) -> None:
    port = free_port()
    app, config = python_merchant(chain, port=port)
    payer = chain.payer()
    before = chain.balance(payer.address)
    with Served(app, port), pytest.raises(PaymentRefused) as refused:
        pay(url=config.resource_url, account=payer, rpc_urls={})
    assert refused.value.code == "no-rpc"
    assert chain.balance(payer.address) == before


def test_offers_are_signed_by_the_merchant_for_each_accept(chain: PaymentChain) -> None:
    """The 402 itself: one offer per accepts[i], signed by the merchant's key, valid for 300 s."""
    import httpx

    port = free_port()
    app, config = python_merchant(chain, port=port)
    with Served(app, port):
        asked = time.time()
        first = httpx.get(config.resource_url)
    assert first.status_code == 402
    required = json.loads(base64.b64decode(first.headers["PAYMENT-REQUIRED"]))
    offers = _offers(required)
    assert len(offers) == len(required["accepts"]) == 1
    offer = parse_artifact(data=offers[0])
    assert recover_eip712_signer(artifact=offer) == config.signer.address
    assert offers[0]["acceptIndex"] == 0
    payload = offers[0]["payload"]
    assert asked + 299 <= payload["validUntil"] <= time.time() + 300  # maxTimeoutSeconds (300 s), as the TS SDK
    assert payload["payTo"] == config.pay_to
    assert payload["amount"] == str(PRICE)
    assert "includeTxHash" not in json.dumps(required)  # the declaration never leaks to clients
