"""Our reviews as ERC-8004 feedback files: the served file has the spec's required fields, names the verified payment,
and round-trips through our own indexer (served bytes → giveFeedback on anvil → sync → payment-verified, shown in
the reputation response's ``erc8004`` section). Every refusal of the route has its code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from service.api.app import create_app
from service.chain.eas_relayer import EasClient
from service.chain.erc8004 import FeedbackScanner, RegistryClient
from service.chain.token import dev_mnemonic_keys, ensure_token, token_contract
from service.cli.erc8004 import give_feedback
from service.config import Settings
from service.domain import Reason
from service.errors import ChainRejected, FetchFailed
from service.identity.fetcher import SafeFetcher
from service.payments.reader import PaymentReader
from service.payments.sources import JsonRpcSource
from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.tables import Erc8004FeedbackRow, ProofRow
from service.verdicts.erc8004 import parse_feedback_file
from service.wiring import Wired
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_sync import Erc8004Deps, sync_erc8004
from service.workflows.runtime import Runtime
from tests.api.test_reputation_store import insert_review
from tests.erc8004.conftest import Deployed, data_uri, deploy, registration, send
from tests.erc8004.solidity import Compiled
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.anvil, pytest.mark.node]
anvil_node = anvil_fixture()
SERVICE = "did:web:paid.example.com"
REQUIRED = {"agentRegistry", "agentId", "clientAddress", "createdAt", "value", "valueDecimals"}


@pytest.fixture(scope="module")
def chain(anvil_node: AnvilNode, compiled: dict[str, Compiled]) -> Deployed:
    w3 = Web3(Web3.HTTPProvider(anvil_node.url))
    ensure_token(w3=w3, funder=Account.from_key(ANVIL_DEV_KEY_0), holders=w3.eth.accounts[:8])
    return deploy(w3, compiled)


@pytest.fixture
def setup(chain: Deployed, anvil_node: AnvilNode, files_host: DidWebHost, tmp_path: Path) -> Iterator[Any]:
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        network = f"eip155:{chain.registries.chain_id}"
        payments = PaymentReader(sources={network: JsonRpcSource(url=anvil_node.url)})
        fetcher = SafeFetcher(
            timeout=3, ca_file=str(files_host.ca_pem_path), insecure_hosts=frozenset({files_host.host})
        )
        deps = Erc8004Deps(
            engine=engine,
            client=RegistryClient(w3=chain.w3, registries=chain.registries),
            files=UriFetcher(fetcher=fetcher, ipfs_gateway=files_host.base_url),
            payments=payments,
        )
        eas = EasClient(w3=chain.w3, eas_address="0x" + "11" * 20, relayer=None)
        rt = Runtime(engine=engine, eas=eas, resolver=None, controllers=None, payments=payments)
        app = create_app(Settings(rate_limit_per_minute=1000), wired=Wired(runtime=rt, publisher=None))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield deps, client
        engine.dispose()


def _paid_review(chain: Deployed, deps: Erc8004Deps, *, reviewer: str, payee: str) -> tuple[str, str]:
    token = token_contract(w3=chain.w3)
    receipt = send(chain.w3, sender=reviewer, to=token.address, data=token.encode_abi("transfer", [payee, 25_000]))
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    rid = "rev-erc8004-1"
    insert_review(deps.engine, rid=rid, subject=SERVICE, attester=reviewer.lower(), rating=4, time=1_764_000_000,
                  evidence="payment-backed", uid="0x" + "cd" * 32)  # fmt: skip
    payment = {"status": "settled", "network": f"eip155:{chain.registries.chain_id}", "transaction": tx,
               "payer": reviewer.lower(), "payTo": payee.lower(), "asset": token.address.lower(),
               "amount": "25000"}  # fmt: skip
    with session_scope(deps.engine) as session:
        session.add(ProofRow(review_id=rid, position=0, proof_type="x402-receipt", status="valid", checked_at=1,
                             payment=payment, payment_status="settled"))  # fmt: skip
    return rid, tx


def test_served_feedback_file_round_trips_through_our_indexer(
    chain: Deployed, files_host: DidWebHost, setup: Any
) -> None:
    deps, client = setup
    owner, reviewer = chain.w3.eth.accounts[1], chain.w3.eth.accounts[5]
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE}])))
    rid, tx = _paid_review(chain, deps, reviewer=reviewer, payee=owner)
    registry = chain.registries.agent_registry

    answer = client.get(
        f"/v1/reviews/{rid}/erc8004-feedback.json", params={"agentRegistry": registry, "agentId": agent}
    )
    assert answer.status_code == 200, answer.text
    body = answer.content
    assert answer.headers["ERC8004-Feedback-Hash"] == "0x" + Web3.keccak(body).hex().removeprefix("0x")
    doc = json.loads(body)
    assert set(doc) >= REQUIRED
    assert (doc["value"], doc["valueDecimals"], doc["tag1"]) == (75, 0, "starred")  # 4★ on the 0–100 scale
    assert doc["proofOfPayment"] == {"fromAddress": reviewer.lower(), "toAddress": owner.lower(),
                                     "chainId": str(chain.registries.chain_id), "txHash": tx}  # fmt: skip
    assert doc["omatrust"]["attestation"] == "0x" + "cd" * 32
    parsed = parse_feedback_file(body)  # our own indexer's parser accepts it
    assert (parsed.agent_id, parsed.client_address) == (agent, reviewer.lower())

    # the reviewer points giveFeedback at the served bytes (hosted as-is) with the header's hash
    files_host.set("/served/feedback.json", body)
    digest = bytes.fromhex(answer.headers["ERC8004-Feedback-Hash"][2:])
    chain.give(client=reviewer, agent_id=agent, value=75, uri=files_host.url("/served/feedback.json"), file_hash=digest)
    sync_erc8004(deps=deps, scanner=FeedbackScanner(client=deps.client, chunk_blocks=50))
    with session_scope(deps.engine) as session:
        row = session.get(Erc8004FeedbackRow, (chain.registries.chain_id, chain.registries.reputation.lower(),
                                               str(agent), reviewer.lower(), 1))  # fmt: skip
        assert row is not None
        assert (row.status, row.reason, row.payment_tx) == ("payment-verified", None, tx)

    # now the subject maps to the agent: no need to name it, and the reputation response shows the stream
    again = client.get(f"/v1/reviews/{rid}/erc8004-feedback.json")
    assert again.status_code == 200
    assert again.content == body
    rep = client.get(f"/v1/services/{quote(SERVICE, safe='')}/reputation").json()
    assert rep["erc8004"]["count"] == 1
    assert rep["erc8004"]["paymentVerified"] == 1
    assert rep["erc8004"]["normalizedMean"] == 75
    assert rep["erc8004"]["inScore"] is False
    page = client.get(f"/services/{quote(SERVICE, safe='')}")
    assert page.status_code == 200
    assert 'id="erc8004"' in page.text
    assert '<dd id="erc8004-verified">1 (100%)</dd>' in page.text
    assert rep["erc8004"]["agents"] == [{"agentRegistry": f"eip155:{chain.registries.chain_id}:"
                                                          f"{chain.registries.identity.lower()}",
                                         "agentId": str(agent)}]  # fmt: skip


def test_feedback_file_refusals_have_codes(chain: Deployed, setup: Any) -> None:
    deps, client = setup
    rid, _ = _paid_review(chain, deps, reviewer=chain.w3.eth.accounts[6], payee=chain.w3.eth.accounts[1])
    cases = [
        ("/v1/reviews/nope/erc8004-feedback.json", {}, 404, "review-not-found"),
        (f"/v1/reviews/{rid}/erc8004-feedback.json", {}, 404, "erc8004-agent-unknown"),
        (f"/v1/reviews/{rid}/erc8004-feedback.json", {"agentId": 3}, 422, "erc8004-agent-invalid"),
        (f"/v1/reviews/{rid}/erc8004-feedback.json", {"agentRegistry": "eip155:1:0x12", "agentId": 3}, 422,
         "erc8004-agent-invalid"),
    ]  # fmt: skip
    for path, params, status, code in cases:
        answer = client.get(path, params=params)
        assert (answer.status_code, answer.json()["code"]) == (status, code), path
        assert answer.headers["content-type"].startswith("application/problem+json")


class _AppFetcher:
    """Fetcher for the in-process app (``http://testserver``): the indexer reads the URI the CLI step committed.
    Transport only — the https path of the same indexer is covered above with a real loopback TLS host."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def fetch(self, *, url: str) -> bytes:
        answer = self.client.get(url)  # other tests' feedback on this module's chain points elsewhere: not found here
        if answer.status_code != 200:
            raise FetchFailed(Reason.FETCH_HTTP_STATUS, str(answer.status_code))
        return answer.content


def test_review_erc8004_step_gives_feedback_that_our_indexer_verifies(chain: Deployed, setup: Any) -> None:
    deps, client = setup
    owner = chain.w3.eth.accounts[1]
    reviewer = Account.from_key(dev_mnemonic_keys(count=8)[7])
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE}])))
    rid, tx = _paid_review(chain, deps, reviewer=reviewer.address, payee=owner)
    out = give_feedback(http=client, api="http://testserver", review_id=rid, agent_id=agent, account=reviewer,
                        w3=chain.w3, registries=chain.registries)  # fmt: skip
    assert out["feedbackURI"].startswith(f"http://testserver/v1/reviews/{rid}/erc8004-feedback.json?")
    deps.files = UriFetcher(fetcher=_AppFetcher(client), ipfs_gateway="https://ipfs.invalid")
    sync_erc8004(deps=deps, scanner=FeedbackScanner(client=deps.client, chunk_blocks=50))
    with session_scope(deps.engine) as session:
        row = session.get(Erc8004FeedbackRow, (chain.registries.chain_id, chain.registries.reputation.lower(),
                                               str(agent), reviewer.address.lower(), 1))  # fmt: skip
        assert row is not None
        assert (row.status, row.reason, row.payment_tx, row.feedback_hash) == (
            "payment-verified", None, tx, out["feedbackHash"])  # fmt: skip
    # the owner cannot rate its own agent: the registry reverts and the step says so
    owner_key = Account.from_key(dev_mnemonic_keys(count=2)[1])
    with pytest.raises(ChainRejected):
        give_feedback(http=client, api="http://testserver", review_id=rid, agent_id=agent, account=owner_key,
                      w3=chain.w3, registries=chain.registries)  # fmt: skip
