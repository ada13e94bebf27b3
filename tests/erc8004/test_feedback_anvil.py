"""ERC-8004 feedback on a real anvil node: indexing, agent → service mapping, verification reasons, revocation,
reorgs. Payments are real test-USDC transfers (service.chain.token); files are served by a loopback HTTPS host."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from sqlmodel import Session, select
from web3 import Web3

from service.chain.erc8004 import FeedbackScanner, RegistryClient
from service.chain.token import dev_mnemonic_keys, ensure_token, find_token, token_contract
from service.dids import normalize_did
from service.identity.fetcher import SafeFetcher
from service.payments.reader import PaymentReader
from service.payments.sources import JsonRpcSource
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import Erc8004AgentRow, Erc8004FeedbackRow, Erc8004ResponseRow
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_reputation import service_feedback
from service.workflows.erc8004_sync import Erc8004Deps, Erc8004Report, sync_erc8004
from tests.erc8004.conftest import Deployed, data_uri, deploy, registration, send
from tests.erc8004.solidity import Compiled
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.anvil, pytest.mark.node]
anvil_node = anvil_fixture()
SERVICE_DID = "did:web:agent.example.com"


@pytest.fixture(scope="module")
def chain(anvil_node: AnvilNode, compiled: dict[str, Compiled]) -> Deployed:
    w3 = Web3(Web3.HTTPProvider(anvil_node.url))
    ensure_token(w3=w3, funder=Account.from_key(ANVIL_DEV_KEY_0), holders=w3.eth.accounts[:8])
    return deploy(w3, compiled)


@pytest.fixture
def deps_factory(chain: Deployed, anvil_node: AnvilNode, files_host: DidWebHost, tmp_path: Path) -> Iterator[Any]:
    made: list[Any] = []

    def make(name: str = "a") -> Erc8004Deps:
        ctx = fresh_database_url(tmp_path / name if (tmp_path / name).mkdir() is None else tmp_path)
        url = ctx.__enter__()
        made.append(ctx)
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3, max_bytes=16 * 1024, ca_file=str(files_host.ca_pem_path),
                              insecure_hosts=frozenset({files_host.host}))  # fmt: skip
        source = JsonRpcSource(url=anvil_node.url)
        network = f"eip155:{chain.registries.chain_id}"
        return Erc8004Deps(
            engine=engine,
            client=RegistryClient(w3=chain.w3, registries=chain.registries),
            files=UriFetcher(fetcher=fetcher, ipfs_gateway=files_host.base_url, max_bytes=16 * 1024),
            payments=PaymentReader(sources={network: source}),
        )

    yield make
    for ctx in made:
        ctx.__exit__(None, None, None)


def _sync(deps: Erc8004Deps, *, chunk_blocks: int = 5) -> Erc8004Report:
    return sync_erc8004(deps=deps, scanner=FeedbackScanner(client=deps.client, chunk_blocks=chunk_blocks))


def _rows(deps: Erc8004Deps) -> dict[tuple[str, str, int], Erc8004FeedbackRow]:
    with Session(deps.engine) as s:
        return {(r.agent_id, r.client, r.feedback_index): r for r in s.exec(select(Erc8004FeedbackRow))}


def _pay(chain: Deployed, *, payer: str, payee: str, amount: int = 10_000) -> str:
    receipt = send(chain.w3, sender=payer, to=token_contract(w3=chain.w3).address,
                   data=token_contract(w3=chain.w3).encode_abi("transfer", [payee, amount]))  # fmt: skip
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _pay_by_authorization(chain: Deployed, *, payer_index: int, payee: str, amount: int = 10_000) -> str:
    """EIP-3009 ``transferWithAuthorization`` signed by the payer, sent by someone else (how x402 settles)."""
    payer = Account.from_key(dev_mnemonic_keys(count=payer_index + 1)[payer_index])
    token = find_token(w3=chain.w3, refresh=True)
    assert token is not None
    nonce = os.urandom(32)
    message = {"from": payer.address, "to": Web3.to_checksum_address(payee), "value": amount, "validAfter": 0,
               "validBefore": 2**40, "nonce": nonce}  # fmt: skip
    signed = payer.sign_typed_data(
        domain_data={"name": token.name, "version": token.version, "chainId": chain.registries.chain_id,
                     "verifyingContract": token.address},
        message_types={"TransferWithAuthorization": [
            {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}]},
        message_data=message,
    )  # fmt: skip
    contract = token_contract(w3=chain.w3)
    data = contract.encode_abi("transferWithAuthorization", [
        message["from"], message["to"], amount, 0, 2**40, nonce, signed.v, signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big")])  # fmt: skip
    receipt = send(chain.w3, sender=chain.w3.eth.accounts[0], to=contract.address, data=data)
    return "0x" + bytes(receipt["transactionHash"]).hex()


def _file(chain: Deployed, *, agent: int, client: str, value: int, proof: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "agentRegistry": chain.registries.agent_registry,
        "agentId": agent,
        "clientAddress": f"eip155:{chain.registries.chain_id}:{client}",
        "createdAt": "2026-11-30T12:00:00Z",
        "value": value,
        "valueDecimals": 0,
        "tag1": "starred",
    }
    if proof is not None:
        doc["proofOfPayment"] = proof
    return doc


def _proof(chain: Deployed, *, sender: str, to: str, tx: str) -> dict[str, Any]:
    return {"fromAddress": sender, "toAddress": to, "chainId": str(chain.registries.chain_id), "txHash": tx}


def _publish(host: DidWebHost, path: str, doc: dict[str, Any]) -> tuple[str, bytes]:
    body = host.set_json(path, doc)
    return host.url(path), keccak(body)


def test_feedback_is_verified_or_stored_with_its_reason(
    chain: Deployed, files_host: DidWebHost, deps_factory: Any
) -> None:
    accounts = chain.w3.eth.accounts
    owner, alice, bob, carol, dave, erin, stranger = accounts[1], *accounts[2:7], accounts[7]
    wallet = owner.lower()  # agentWallet starts as the owner
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE_DID}])))

    # alice really paid the agent: an EIP-3009 authorization she signed, settled by a third party (as x402 does)
    tx = _pay_by_authorization(chain, payer_index=2, payee=owner)
    uri, digest = _publish(files_host, "/fb/alice.json",
                           _file(chain, agent=agent, client=alice.lower(), value=5,
                                 proof=_proof(chain, sender=alice.lower(), to=wallet, tx=tx)))  # fmt: skip
    chain.give(client=alice, agent_id=agent, value=5, uri=uri, file_hash=digest)
    # bob paid someone else and claims the stranger as the payee
    tx_bob = _pay(chain, payer=bob, payee=stranger)
    uri, digest = _publish(files_host, "/fb/bob.json",
                           _file(chain, agent=agent, client=bob.lower(), value=4,
                                 proof=_proof(chain, sender=bob.lower(), to=stranger.lower(), tx=tx_bob)))  # fmt: skip
    chain.give(client=bob, agent_id=agent, value=4, uri=uri, file_hash=digest)
    # carol paid someone else but claims the agent's wallet as the payee
    tx_carol = _pay(chain, payer=carol, payee=stranger)
    uri, digest = _publish(files_host, "/fb/carol.json",
                           _file(chain, agent=agent, client=carol.lower(), value=1,
                                 proof=_proof(chain, sender=carol.lower(), to=wallet, tx=tx_carol)))  # fmt: skip
    chain.give(client=carol, agent_id=agent, value=1, uri=uri, file_hash=digest)
    # dave's transaction does not exist
    missing = "0x" + "ab" * 32
    uri, digest = _publish(files_host, "/fb/dave.json",
                           _file(chain, agent=agent, client=dave.lower(), value=5,
                                 proof=_proof(chain, sender=dave.lower(), to=wallet, tx=missing)))  # fmt: skip
    chain.give(client=dave, agent_id=agent, value=5, uri=uri, file_hash=digest)
    # erin's file does not hash to the committed feedbackHash; then an oversize file; then a private address
    uri, digest = _publish(files_host, "/fb/erin.json", _file(chain, agent=agent, client=erin.lower(), value=5,
                                                              proof=None))  # fmt: skip
    chain.give(client=erin, agent_id=agent, value=5, uri=uri, file_hash=keccak(b"something else"))
    files_host.set_oversize("/fb/big.json", 64 * 1024)
    chain.give(client=erin, agent_id=agent, value=5, uri=files_host.url("/fb/big.json"), file_hash=digest)
    chain.give(client=erin, agent_id=agent, value=5, uri="https://10.0.0.7/fb.json", file_hash=digest)
    # stranger rates the agent, then buys it: their feedback is now the owner's self-feedback
    # (a second agent of the same service: a transfer clears the agent's wallet, the payee of the payments above)
    second = chain.register(
        owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE_DID}]))
    )
    chain.give(client=stranger, agent_id=second, value=5)
    chain.transfer_agent(owner=owner, to=stranger, agent_id=second)
    chain.respond(responder=stranger, agent_id=agent, client=alice, index=1, uri="https://example.com/thanks")

    deps = deps_factory("a")
    report = _sync(deps)
    rows = _rows(deps)
    key = lambda who, i=1: (str(agent), who.lower(), i)  # noqa: E731
    assert (rows[key(alice)].status, rows[key(alice)].reason) == ("payment-verified", None)
    assert rows[key(alice)].payment_tx == tx
    assert rows[key(bob)].reason == "payment-wrong-payee"
    assert rows[key(carol)].reason == "payment-wrong-payee"
    assert rows[key(dave)].reason == "payment-not-found"
    assert [rows[key(erin, i)].reason for i in (1, 2, 3)] == [
        "feedback-hash-mismatch", "fetch-too-large", "fetch-address-refused"]  # fmt: skip
    assert {rows[key(erin, i)].status for i in (1, 2, 3)} == {"rejected"}
    selfish = rows[(str(second), stranger.lower(), 1)]
    assert selfish.self_feedback is True
    assert [r for r in rows.values() if r.self_feedback] == [selfish]
    assert report.payment_verified == 1
    assert report.responses == 1
    assert report.self_feedback == 1
    with Session(deps.engine) as s:
        agent_rows = s.exec(select(Erc8004AgentRow)).all()
        assert sorted((a.agent_id, a.status, tuple(a.service_dids)) for a in agent_rows) == sorted(
            (str(i), "mapped", (SERVICE_DID,)) for i in (agent, second)
        )
        assert len(s.exec(select(Erc8004ResponseRow)).all()) == 1

    summary = service_feedback(engine=deps.engine, did=SERVICE_DID)
    assert summary is not None
    # self-feedback left out: alice 5, bob 4, carol 1, dave 5, erin 5 ×3 → 7 items, one verified
    assert (summary["count"], summary["paymentVerified"], summary["selfFeedbackExcluded"]) == (7, 1, 1)
    assert summary["normalizedMean"] == pytest.approx((5 + 4 + 1 + 5 + 15) / 7)

    # alice revokes: her verified feedback drops out on the next sync
    chain.revoke(client=alice, agent_id=agent, index=1)
    again = _sync(deps)
    assert again.revoked == 1
    assert again.feedback == 0
    after = service_feedback(engine=deps.engine, did=SERVICE_DID)
    assert after is not None
    assert (after["count"], after["paymentVerified"], after["revokedExcluded"]) == (6, 0, 1)


def test_unmappable_agents_are_stored_and_reported(chain: Deployed, files_host: DidWebHost, deps_factory: Any) -> None:
    owner, client = chain.w3.eth.accounts[1], chain.w3.eth.accounts[2]
    no_did = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "MCP", "endpoint": "x"}])))
    broken = chain.register(owner=owner, uri="data:application/json;base64,!!!")
    # web endpoint on a domain whose agent-registration.json lists another agent: refuted
    web = files_host.base_url + "/"
    refuted = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "web", "endpoint": web}])))
    files_host.set_json("/.well-known/agent-registration.json",
                        {"registrations": [{"agentId": refuted + 1000,
                                            "agentRegistry": chain.registries.agent_registry}]})  # fmt: skip
    for agent in (no_did, broken, refuted):
        chain.give(client=client, agent_id=agent, value=3)
    deps = deps_factory("b")
    report = _sync(deps)
    assert {str(no_did), str(broken), str(refuted)} <= set(report.unmapped_agents)
    with Session(deps.engine) as s:
        reasons = {r.agent_id: r.reason for r in s.exec(select(Erc8004AgentRow))}
    assert reasons[str(no_did)] == "no-service-did"
    assert reasons[str(broken)] == "fetch-scheme-refused"
    assert reasons[str(refuted)] == "no-service-did"
    # the domain now lists the agent: it maps to the host's did:web
    listed = {"registrations": [{"agentId": refuted, "agentRegistry": chain.registries.agent_registry}]}
    files_host.set_json("/.well-known/agent-registration.json", listed)
    chain.give(client=client, agent_id=refuted, value=4)
    deps2 = deps_factory("c")
    _sync(deps2)
    with Session(deps2.engine) as s:
        row = s.get(Erc8004AgentRow, (chain.registries.chain_id, chain.registries.reputation.lower(), str(refuted)))
    assert row is not None
    assert row.status == "mapped"
    assert row.service_dids == [normalize_did(files_host.did)]


def _store(deps: Erc8004Deps) -> dict[str, Any]:
    with Session(deps.engine) as s:
        fb = sorted(
            (r.agent_id, r.client, r.feedback_index, r.value, r.status, r.reason, r.self_feedback, r.revoked_block,
             r.block_number, r.block_hash)
            for r in s.exec(select(Erc8004FeedbackRow))
        )  # fmt: skip
        resp = sorted((r.tx_hash, r.log_index, r.block_number) for r in s.exec(select(Erc8004ResponseRow)))
    return {"feedback": fb, "responses": resp}


def test_reorg_rolls_indexing_back_exactly(chain: Deployed, anvil_node: AnvilNode, deps_factory: Any) -> None:
    owner, alice, bob = chain.w3.eth.accounts[1], chain.w3.eth.accounts[2], chain.w3.eth.accounts[3]
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE_DID}])))
    chain.give(client=alice, agent_id=agent, value=2)
    chain.give(client=bob, agent_id=agent, value=3)
    snapshot = anvil_node.rpc("evm_snapshot")
    # to be orphaned: alice revokes, bob rates again, alice gets a response
    chain.revoke(client=alice, agent_id=agent, index=1)
    chain.give(client=bob, agent_id=agent, value=1)
    chain.respond(responder=owner, agent_id=agent, client=alice, index=1, uri="https://example.com/r")
    deps = deps_factory("d")
    _sync(deps, chunk_blocks=3)
    orphaned = _store(deps)
    assert any(f[7] is not None for f in orphaned["feedback"] if f[0] == str(agent))
    assert orphaned["responses"]
    anvil_node.rpc("evm_revert", [snapshot])
    chain.give(client=alice, agent_id=agent, value=5)  # the canonical branch: different history
    anvil_node.rpc("anvil_mine", ["0x4"])
    report = _sync(deps, chunk_blocks=3)
    assert report.reorg_fork is not None
    fresh = deps_factory("e")
    _sync(fresh, chunk_blocks=3)
    assert _store(deps) == _store(fresh)
    ours = [f for f in _store(deps)["feedback"] if f[0] == str(agent)]
    assert [(f[1], f[3], f[7]) for f in ours] == sorted(
        [(alice.lower(), "2", None), (alice.lower(), "5", None), (bob.lower(), "3", None)]
    )  # the revocation was orphaned
    assert json.dumps(_store(deps)) != json.dumps(orphaned)
