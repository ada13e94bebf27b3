"""The ERC-8004 registries on the service's embedded chain (eth-tester + py-evm): feedback whose proofOfPayment names
a real test-USDC payment settled by the x402 SDK facilitator (EIP-3009) is payment-verified; a payment to someone
else is not; and the agent's wallet is read at the feedback's block (this chain keeps every block's state, so the
registry is asked with ``eth_call`` at that block)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from sqlmodel import Session, select

from service.chain.embedded import EmbeddedChain, start_embedded_chain
from service.chain.erc8004 import FeedbackScanner, RegistryClient
from service.chain.token import place_on_embedded
from service.identity.fetcher import SafeFetcher
from service.payments.reader import PaymentReader
from service.payments.sources import Web3Source
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import Erc8004FeedbackRow
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_reputation import service_feedback
from service.workflows.erc8004_sync import Erc8004Deps, sync_erc8004
from tests.erc8004.conftest import Deployed, calldata, data_uri, deploy, registration
from tests.erc8004.solidity import Compiled
from tests.payments.settle import Settler
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.node]
SERVICE_DID = "did:web:embedded-agent.example.com"
PRICE = 10_000


@pytest.fixture
def chain(compiled: dict[str, Compiled]) -> tuple[EmbeddedChain, Deployed]:
    embedded = start_embedded_chain(dev_accounts=6, on_first_creation=(place_on_embedded,))
    with embedded.lock:
        return embedded, deploy(embedded.w3, compiled)


@pytest.fixture
def deps(chain: tuple[EmbeddedChain, Deployed], files_host: DidWebHost, tmp_path: Path) -> Iterator[Erc8004Deps]:
    embedded, deployed = chain
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3, ca_file=str(files_host.ca_pem_path),
                              insecure_hosts=frozenset({files_host.host}))  # fmt: skip
        network = f"eip155:{deployed.registries.chain_id}"
        yield Erc8004Deps(
            engine=engine,
            client=RegistryClient(w3=embedded.w3, registries=deployed.registries, lock=embedded.lock),
            files=UriFetcher(fetcher=fetcher, ipfs_gateway=files_host.base_url),
            payments=PaymentReader(sources={network: Web3Source(w3=embedded.w3, lock=embedded.lock)}),
        )
        engine.dispose()


def _feedback_file(deployed: Deployed, *, agent: int, client: str, value: int, to: str, tx: str) -> dict[str, Any]:
    chain_id = deployed.registries.chain_id
    return {
        "agentRegistry": deployed.registries.agent_registry, "agentId": agent,
        "clientAddress": f"eip155:{chain_id}:{client.lower()}", "createdAt": "2026-11-30T12:00:00Z",
        "value": value, "valueDecimals": 0, "tag1": "starred",
        "proofOfPayment": {"fromAddress": client.lower(), "toAddress": to.lower(), "chainId": str(chain_id),
                           "txHash": tx},
    }  # fmt: skip


def test_settled_payment_verifies_feedback_on_the_embedded_chain(
    chain: tuple[EmbeddedChain, Deployed], deps: Erc8004Deps, files_host: DidWebHost
) -> None:
    embedded, deployed = chain
    owner = embedded.dev_accounts[0].address
    alice, bob, carol = embedded.dev_accounts[1], embedded.dev_accounts[2], embedded.dev_accounts[3]
    stranger = Account.create().address
    settler = Settler(w3=embedded.w3, gas_key="0x" + bytes(embedded.relayer.key).hex(), lock=embedded.lock)
    with embedded.lock:
        services = [{"name": "DID", "endpoint": SERVICE_DID}]
        agent = deployed.register(owner=owner, uri=data_uri(registration(services=services)))

    def rate(who: Any, *, value: int, pay_to: str, claim_to: str, path: str) -> str:
        tx = settler.pay(payer=who, pay_to=pay_to, amount=PRICE)  # a real EIP-3009 settlement by the facilitator
        body = files_host.set_json(path, _feedback_file(deployed, agent=agent, client=who.address, value=value,
                                                        to=claim_to, tx=tx))  # fmt: skip
        with embedded.lock:
            deployed.give(client=who.address, agent_id=agent, value=value, uri=files_host.url(path),
                          file_hash=keccak(body))  # fmt: skip
        return tx

    tx_alice = rate(alice, value=90, pay_to=owner, claim_to=owner, path="/emb/alice.json")
    rate(bob, value=40, pay_to=stranger, claim_to=owner, path="/emb/bob.json")  # paid someone else
    # the wallet moves to a new address after alice's feedback: her payment to the old wallet still verifies
    new_wallet = Account.create()
    with embedded.lock:
        deployed.set_wallet(owner=owner, agent_id=agent, wallet=new_wallet)
    rate(carol, value=70, pay_to=owner, claim_to=owner, path="/emb/carol.json")  # the old wallet, after the change

    report = sync_erc8004(deps=deps, scanner=FeedbackScanner(client=deps.client, chunk_blocks=50))
    with Session(deps.engine) as session:
        rows = {r.client: r for r in session.exec(select(Erc8004FeedbackRow))}
    verdicts = {who.address.lower(): (rows[who.address.lower()].status, rows[who.address.lower()].reason)
                for who in (alice, bob, carol)}  # fmt: skip
    assert verdicts == {
        alice.address.lower(): ("payment-verified", None),
        bob.address.lower(): ("unverified", "payment-wrong-payee"),
        carol.address.lower(): ("unverified", "payment-wrong-payee"),
    }
    assert rows[alice.address.lower()].payment_tx == tx_alice
    # this chain answers eth_call at a past block (so that is how the wallet was read): the old wallet then
    ask = {"to": deployed.identity, "data": calldata("getAgentWallet(uint256)", ["uint256"], [agent])}
    with embedded.lock:
        then = embedded.w3.eth.call(ask, block_identifier=rows[alice.address.lower()].block_number)  # type: ignore[arg-type]
        now = embedded.w3.eth.call(ask)  # type: ignore[arg-type]
    assert (bytes(then)[-20:], bytes(now)[-20:]) == (bytes.fromhex(owner[2:]), bytes.fromhex(new_wallet.address[2:]))
    assert report.payment_verified == 1
    summary = service_feedback(engine=deps.engine, did=SERVICE_DID)
    assert summary is not None
    assert (summary["count"], summary["paymentVerified"], summary["normalizedMean"]) == (3, 1, pytest.approx(200 / 3))
