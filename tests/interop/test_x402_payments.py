"""Interop with the TypeScript x402 SDK 2.27.0, both directions, real payments on anvil:

* the TS client (`@x402/fetch` + `@x402/evm`) pays our Python merchant (PyPI x402 middleware + our offer-receipt and
  reviews extensions); the TS `extractReceiptFromResponse` and `verify*Signature*` functions accept our receipt and
  offers (EIP-712 and JWS with a did:web kid);
* `omatrust pay` pays a TS merchant (`@x402/express` + `createOfferReceiptExtension`) settling through our
  facilitator (the PyPI SDK's, over HTTP), and `omatrust review` turns its receipt into a verified purchase.

Every payment is a real `transferWithAuthorization`: the payer's and payTo's balances move by exactly the price.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from tests.interop.peer import HERE, node_ready
from tests.x402.support import PRICE, PaymentChain, Served, Service, python_merchant

pytestmark = [pytest.mark.anvil, pytest.mark.node, pytest.mark.slow]
PEER = HERE / "x402_peer.mjs"
# service.merchant_ports: Python merchant (EIP-712), Python merchant (JWS), TS merchant


@pytest.fixture(scope="module", autouse=True)
def _node() -> None:
    reason = node_ready()
    if reason:
        pytest.skip(reason)


def _peer_pay(url: str, key: str, chain: PaymentChain) -> dict[str, object]:
    body = {"url": url, "privateKey": key, "network": chain.token.network, "asset": chain.token.address}
    proc = subprocess.run(["node", str(PEER), "pay"], input=json.dumps(body).encode(), capture_output=True, cwd=HERE,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize(("fmt", "slot"), [("eip712", 0), ("jws", 1)])  # ids stay equal across xdist workers
def test_ts_client_pays_our_merchant_and_the_ts_sdk_accepts_our_artifacts(
    chain: PaymentChain, service: Service, fmt: str, slot: int
) -> None:
    port = service.merchant_ports[slot]
    app, config = python_merchant(chain, port=port, signer_format=fmt, review_provider=service.base)
    payer = chain.payer()
    before_payer, before_merchant = chain.balance(payer.address), chain.balance(config.pay_to)
    with Served(app, port):
        out = _peer_pay(config.resource_url, "0x" + bytes(payer.key).hex(), chain)
    assert out["status"] == 200, out
    settlement = out["settlement"]
    assert isinstance(settlement, dict)
    assert settlement["success"] is True
    assert chain.balance(payer.address) == before_payer - PRICE
    assert chain.balance(config.pay_to) == before_merchant + PRICE
    verified = out["verified"]
    assert isinstance(verified, dict)
    receipt = verified["receipt"]
    assert receipt["ok"] is True, receipt
    assert receipt["payload"]["payer"] == payer.address
    assert receipt["payload"]["transaction"] == settlement["transaction"]  # includeTxHash kept through settlement
    assert receipt["payload"]["resourceUrl"] == config.resource_url
    offers = verified["offers"]
    assert len(offers) == 1
    assert offers[0]["ok"] is True, offers[0]
    assert offers[0]["payload"]["payTo"] == config.pay_to
    if fmt == "eip712":
        assert receipt["signer"] == offers[0]["signer"] == config.signer.address
    else:
        assert receipt["kid"] == offers[0]["kid"] == config.signer.kid
    # the reviews extension rides along in PAYMENT-RESPONSE
    providers = settlement["extensions"]["reviews"]["info"]["providers"]
    assert providers[0]["write"] == f"{service.base}/r/{chain.token.network}/{settlement['transaction']}"


def test_omatrust_pay_ts_merchant_then_review_is_verified(
    chain: PaymentChain, service: Service, tmp_path: Path
) -> None:
    port = service.merchant_ports[2]
    signer = Account.create()
    pay_to = Account.create().address
    merchant_input = {
        "port": port, "network": chain.token.network, "asset": chain.token.address, "name": chain.token.name,
        "version": chain.token.version, "amount": str(PRICE), "payTo": pay_to, "facilitatorUrl": chain.facilitator_url,
        "signerKey": "0x" + bytes(signer.key).hex(), "kid": f"did:web:localhost%3A{port}#key-1", "includeTxHash": True,
    }  # fmt: skip
    proc = subprocess.Popen(["node", str(PEER), "merchant"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=HERE)  # fmt: skip
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(merchant_input).encode())
        proc.stdin.close()
        ready = json.loads(proc.stdout.readline() or b"{}")  # blocks until the peer listens (or exits)
        assert ready.get("ready"), proc.stderr.read().decode() if proc.stderr else ""
        payer = chain.payer()
        before_payer, before_merchant = chain.balance(payer.address), chain.balance(pay_to)
        env = {**service.env, "PAYER_KEY": "0x" + bytes(payer.key).hex(),
               "OMATRUST_PAYMENT_RPC_URLS": f"{chain.token.network}={chain.node.url}"}  # fmt: skip
        env.pop("OMATRUST_RPC_URL")
        out_dir = tmp_path / "bought"
        paid = subprocess.run(
            [sys.executable, "-m", "service.cli.main", "pay", ready["url"], "--key", "env:PAYER_KEY",
             "--out", str(out_dir)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert paid.returncode == 0, paid.stdout + paid.stderr
        result = json.loads(paid.stdout)
        assert result["status"] == 200
        assert result["payer"] == payer.address
        assert chain.balance(payer.address) == before_payer - PRICE
        assert chain.balance(pay_to) == before_merchant + PRICE
        assert json.loads((out_dir / "receipt.json").read_text()) == result["receipt"]
        assert json.loads((out_dir / "offer.json").read_text()) == result["offer"]
        assert result["receipt"]["payload"]["payer"] == payer.address
        reviewed = subprocess.run(
            [sys.executable, "-m", "service.cli.main", "review", "--receipt", str(out_dir / "receipt.json"),
             "--offer", str(out_dir / "offer.json"), "--rating", "4", "--text", "TS merchant, Python payer",
             "--key", "env:PAYER_KEY", "--api", service.base],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
        review = json.loads(reviewed.stdout)
        assert review["verifiedPurchase"] is True
        assert review["subject"] == f"did:web:localhost%3A{port}"
        assert review["proofs"][0]["signer"] == signer.address
        # the same receipt a second time backs no second review: refused, problem+json on stderr, exit 1
        again = subprocess.run(
            [sys.executable, "-m", "service.cli.main", "review", "--receipt", str(out_dir / "receipt.json"),
             "--rating", "1", "--key", "env:PAYER_KEY", "--api", service.base],
            env={**env, "PAYER_KEY": "0x" + bytes(Account.create().key).hex()}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert again.returncode == 1
        assert json.loads(again.stderr)["code"] == "payer-mismatch"
    finally:
        proc.kill()
        proc.wait(10)
