"""Our issuer (service.proofs sign_*) creates offers and receipts; the x402 TS SDK verifies each.

JWS kids: did:key, did:jwk, and did:web on the real loopback host — over HTTPS (the SDK trusts the test CA through
NODE_EXTRA_CA_CERTS; the host name ``didweb.test`` maps to 127.0.0.1 inside the peer) and over plain http for
``localhost``, which is what the SDK does for that name.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.domain import OfferPayload, ReceiptPayload
from service.proofs import (
    offer_to_wire,
    receipt_to_wire,
    sign_offer_eip712,
    sign_offer_jws,
    sign_receipt_eip712,
    sign_receipt_jws,
)
from tests.interop.keys import ALGS
from tests.interop.peer import SDK_HOST_NAME, SDK_HOSTS, node_ready, run_peer, sdk_did
from tests.interop.scenario import ASSET, NETWORK, PAYER, TRANSACTION, Keys, now
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.node, pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


def _offer(url: str, pay_to: str) -> OfferPayload:
    return OfferPayload(
        version=1,
        resource_url=url,
        scheme="exact",
        network=NETWORK,
        asset=ASSET,
        pay_to=pay_to,
        amount="10000",
        valid_until=now() + 600,
    )


def _receipt(url: str, transaction: str = TRANSACTION) -> ReceiptPayload:
    return ReceiptPayload(
        version=1, network=NETWORK, resource_url=url, payer=PAYER, issued_at=now(), transaction=transaction
    )


def _verify(items: list[dict[str, Any]], host: DidWebHost) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = run_peer("verify", {"artifacts": items}, ca_file=host.ca_pem_path, hosts=SDK_HOSTS)[
        "results"
    ]
    return results


def test_sdk_verifies_our_eip712_offers_and_receipts(host: DidWebHost) -> None:
    keys = Keys.new()
    url = f"{host.base_url}/weather"
    private_key = bytes.fromhex(keys.evm_key[2:])
    offer, receipt, bare = _offer(url, keys.evm_address), _receipt(url), _receipt(url, transaction="")
    items = [
        {"kind": "offer", "artifact": sign_offer_eip712(payload=offer, private_key=private_key)},
        {"kind": "receipt", "artifact": sign_receipt_eip712(payload=receipt, private_key=private_key)},
        {"kind": "receipt", "artifact": sign_receipt_eip712(payload=bare, private_key=private_key)},
    ]
    results = _verify(items, host)
    for result, wire in zip(
        results, [offer_to_wire(offer), receipt_to_wire(receipt), receipt_to_wire(bare)], strict=True
    ):
        assert result["ok"], result
        assert result["signer"] == keys.evm_address
        assert result["payload"] == wire


def test_sdk_verifies_our_jws_with_every_alg_and_kid_method(host: DidWebHost) -> None:
    keys = Keys.new()
    https_did = sdk_did(host.port, "svc")  # fetched by the SDK over HTTPS
    host.set_document(keys.document(https_did), "svc")
    host.set_document(keys.document(host.did))  # localhost: fetched by the SDK over plain http
    url = f"{host.base_url}/weather"
    items, expected = [], []
    for alg in ALGS:
        jwk = keys.jwks[alg]
        for kid in (
            keys.kid("web", alg, https_did),
            keys.kid("web", alg, host.did),
            keys.kid("key", alg, ""),
            keys.kid("jwk", alg, ""),
        ):
            offer, receipt, bare = _offer(url, PAYER), _receipt(url), _receipt(url, transaction="")
            items += [
                {"kind": "offer", "artifact": sign_offer_jws(payload=offer, private_jwk=jwk, kid=kid)},
                {"kind": "receipt", "artifact": sign_receipt_jws(payload=receipt, private_jwk=jwk, kid=kid)},
                {"kind": "receipt", "artifact": sign_receipt_jws(payload=bare, private_jwk=jwk, kid=kid)},
            ]
            bare_wire = {k: v for k, v in receipt_to_wire(bare).items() if k != "transaction"}
            expected += [(kid, alg, offer_to_wire(offer)), (kid, alg, receipt_to_wire(receipt)), (kid, alg, bare_wire)]

    results = _verify(items, host)
    for result, (kid, alg, wire) in zip(results, expected, strict=True):
        assert result["ok"], (kid, result)
        assert result["kid"] == kid
        assert result["alg"] in ({alg, "Ed25519"} if alg == "EdDSA" else {alg})
        assert result["payload"] == wire  # JWS receipts omit an absent transaction

    https = host.requests_for("/svc/did.json")
    plain = host.requests_for()
    assert https
    assert all(r.tls and r.sni == SDK_HOST_NAME for r in https)
    assert plain
    assert not any(r.tls for r in plain)


def test_sdk_rejects_our_jws_when_the_did_web_key_is_not_the_signer(host: DidWebHost) -> None:
    # Control for the test above: the SDK really resolves the did:web key (a document with other keys fails).
    keys, other = Keys.new(), Keys.new()
    did = sdk_did(host.port, "svc")
    host.set_document(other.document(did), "svc")
    artifact = sign_receipt_jws(
        payload=_receipt(f"{host.base_url}/x"), private_jwk=keys.jwks["ES256"], kid=keys.kid("web", "ES256", did)
    )
    (result,) = _verify([{"kind": "receipt", "artifact": artifact}], host)
    assert not result["ok"]
    assert "signature verification failed" in result["error"].lower()
