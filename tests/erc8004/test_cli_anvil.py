"""``omatrust review --erc8004`` and ``omatrust sync`` as processes on anvil, against a real ``omatrust serve``: a
reviewer buys from an x402 merchant (test USDC settled by the SDK facilitator), posts the payment-backed review,
the CLI calls ``giveFeedback`` pointing at the feedback file the service serves, and ``omatrust sync`` (registries
configured) indexes that feedback back as payment-verified — the round trip through our own indexer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from eth_utils.crypto import keccak
from sqlmodel import Session, select

from service.store.engine import make_engine
from service.store.tables import Erc8004FeedbackRow
from service.x402.client import pay
from tests.erc8004.conftest import data_uri, deploy, registration
from tests.erc8004.solidity import Compiled
from tests.support.anvil import free_port
from tests.x402.support import OMATRUST, Served, omatrust_service, payment_chain, python_merchant

pytestmark = [pytest.mark.anvil, pytest.mark.node, pytest.mark.slow]


def test_review_erc8004_and_sync_round_trip_as_processes(compiled: dict[str, Compiled], tmp_path: Path) -> None:
    with payment_chain() as chain:
        deployed = deploy(chain.w3, compiled)
        registries = f"{deployed.registries.chain_id}={deployed.identity}/{deployed.reputation}"
        port = free_port()
        with omatrust_service(chain, tmp_path, [port]) as service:
            app, config = python_merchant(chain, port=port, review_provider=service.base)
            did = str(config.signer.did)
            network = chain.token.network
            owner = chain.w3.eth.accounts[1]
            services = [{"name": "DID", "endpoint": did},
                        {"name": "agentWallet", "endpoint": f"{network}:{config.pay_to}"}]  # fmt: skip
            agent = deployed.register(owner=owner, uri=data_uri(registration(services=services)))
            payer = chain.payer()
            chain.node.rpc("anvil_setBalance", [payer.address, hex(10**18)])  # gas for giveFeedback
            env = {**service.env, "OMATRUST_ERC8004_REGISTRIES": registries, "REVIEWER_KEY": "0x" + payer.key.hex()}
            with Served(app, port):  # the service reads the merchant's did.json when the review arrives
                paid = pay(url=config.resource_url, account=payer, rpc_urls={network: chain.node.url},
                           out_dir=tmp_path)  # fmt: skip
                review = subprocess.run(
                    [*OMATRUST, "review", "--receipt", str(tmp_path / "receipt.json"),
                     "--offer", str(tmp_path / "offer.json"), "--rating", "5", "--key", "env:REVIEWER_KEY",
                     "--api", service.base, "--erc8004", str(agent)],
                    env=env, capture_output=True, text=True, timeout=300,
                )  # fmt: skip
            assert review.returncode == 0, review.stdout + review.stderr
            posted, given = (json.loads(line) for line in review.stdout.strip().splitlines()[-2:])
            assert posted["proofs"][0]["payment"]["transaction"] == paid.transaction
            feedback = given["erc8004"]
            served = httpx.get(feedback["feedbackURI"])
            assert "0x" + keccak(served.content).hex() == feedback["feedbackHash"]
            assert json.loads(served.content)["proofOfPayment"]["txHash"] == paid.transaction
            assert chain.w3.eth.get_transaction_receipt(feedback["txHash"])["status"] == 1

            host = service.base.removeprefix("http://")
            sync_env = {**env, "OMATRUST_DID_WEB_INSECURE_HOSTS": f"{env['OMATRUST_DID_WEB_INSECURE_HOSTS']},{host}"}
            sync = subprocess.run([*OMATRUST, "sync"], env=sync_env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
            assert sync.returncode == 0, sync.stdout + sync.stderr
            line = next(x for x in sync.stdout.splitlines() if x.startswith("erc8004: synced blocks"))
            assert "1 new feedback (1 payment-verified, 0 self-feedback; reasons: none)" in line

            engine = make_engine(url=env["OMATRUST_DATABASE_URL"])
            with Session(engine) as session:
                (row,) = session.exec(select(Erc8004FeedbackRow)).all()
            engine.dispose()
            assert (row.agent_id, row.client, row.status, row.reason) == (
                str(agent), payer.address.lower(), "payment-verified", None)  # fmt: skip
            assert (row.feedback_uri, row.feedback_hash, row.payment_tx) == (
                feedback["feedbackURI"], feedback["feedbackHash"], paid.transaction)  # fmt: skip
            section = httpx.get(f"{service.base}/v1/services/{quote(did, safe='')}/reputation").json()["erc8004"]
            assert (section["count"], section["paymentVerified"], section["normalizedMean"]) == (1, 1, 100)
            again = subprocess.run([*OMATRUST, "sync"], env=sync_env, cwd=tmp_path, capture_output=True, text=True,
                                   timeout=300)  # fmt: skip
            assert again.returncode == 0, again.stderr
            assert "erc8004: nothing to read" in again.stdout or " 0 new feedback" in again.stdout
