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
from service.workflows import erc8004_sync
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_reputation import service_feedback
from service.workflows.erc8004_sync import Erc8004Deps, Erc8004Report, recheck_feedback, sync_erc8004
from tests.erc8004.conftest import Deployed, calldata, data_uri, deploy, registration, send
from tests.erc8004.solidity import Compiled
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture, free_port
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost

pytestmark = [pytest.mark.anvil, pytest.mark.node]
anvil_node = anvil_fixture(keep_states=None)  # past blocks' state gone: the wallet comes from MetadataSet history
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


def test_payee_is_the_agent_wallet_when_the_feedback_was_given(
    chain: Deployed, files_host: DidWebHost, deps_factory: Any
) -> None:
    """The wallet is read at the feedback's (and the payment's) block: a wallet changed afterwards still verifies
    the payments made to the old one, and payments to the old one after the change do not."""
    accounts = chain.w3.eth.accounts
    owner, alice, bob, carol = accounts[1], accounts[2], accounts[3], accounts[4]
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE_DID}])))
    old_wallet = owner.lower()
    tx_alice = _pay_by_authorization(chain, payer_index=2, payee=owner)
    uri, digest = _publish(files_host, "/w/alice.json", _file(chain, agent=agent, client=alice.lower(), value=90,
                           proof=_proof(chain, sender=alice.lower(), to=old_wallet, tx=tx_alice)))  # fmt: skip
    chain.give(client=alice, agent_id=agent, value=90, uri=uri, file_hash=digest)
    new_wallet = Account.create()
    chain.set_wallet(owner=owner, agent_id=agent, wallet=new_wallet)
    assert chain.w3.eth.call({"to": chain.identity, "data": calldata("getAgentWallet(uint256)", ["uint256"],
                                                                      [agent])})[-20:] == bytes.fromhex(
        new_wallet.address[2:])  # fmt: skip
    # bob pays the old wallet after the change: it was not the agent's wallet then
    tx_bob = _pay(chain, payer=bob, payee=owner)
    uri, digest = _publish(files_host, "/w/bob.json", _file(chain, agent=agent, client=bob.lower(), value=80,
                           proof=_proof(chain, sender=bob.lower(), to=old_wallet, tx=tx_bob)))  # fmt: skip
    chain.give(client=bob, agent_id=agent, value=80, uri=uri, file_hash=digest)
    # carol pays the new wallet
    tx_carol = _pay(chain, payer=carol, payee=new_wallet.address)
    proof = _proof(chain, sender=carol.lower(), to=new_wallet.address.lower(), tx=tx_carol)
    uri, digest = _publish(files_host, "/w/carol.json",
                           _file(chain, agent=agent, client=carol.lower(), value=70, proof=proof))  # fmt: skip
    chain.give(client=carol, agent_id=agent, value=70, uri=uri, file_hash=digest)

    deps = deps_factory("w")
    _sync(deps)
    rows = _rows(deps)
    verdicts = {who: (rows[(str(agent), who.lower(), 1)].status, rows[(str(agent), who.lower(), 1)].reason)
                for who in (alice, bob, carol)}  # fmt: skip
    assert verdicts == {alice: ("payment-verified", None), bob: ("unverified", "payment-wrong-payee"),
                        carol: ("payment-verified", None)}  # fmt: skip


def _signed_transfer(chain: Deployed, *, payer_index: int, payee: str, amount: int = 10_000) -> tuple[str, bytes]:
    """A token transfer signed by the payer but not sent yet (for the nonce after the payer's next transaction):
    (its hash, the raw transaction)."""
    payer = Account.from_key(dev_mnemonic_keys(count=payer_index + 1)[payer_index])
    token = token_contract(w3=chain.w3)
    tx = token.functions.transfer(Web3.to_checksum_address(payee), amount).build_transaction({
        "from": payer.address, "nonce": chain.w3.eth.get_transaction_count(payer.address) + 1, "gas": 200_000,
        "chainId": chain.registries.chain_id, "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9,
    })  # fmt: skip
    signed = payer.sign_transaction(tx)
    return "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction)


def test_open_payment_checks_upgrade_when_the_chain_settles_and_never_downgrade(
    chain: Deployed, anvil_node: AnvilNode, files_host: DidWebHost, deps_factory: Any
) -> None:
    accounts = chain.w3.eth.accounts
    owner, alice, dave = accounts[1], accounts[2], accounts[6]
    agent = chain.register(owner=owner, uri=data_uri(registration(services=[{"name": "DID", "endpoint": SERVICE_DID}])))
    tx_alice = _pay_by_authorization(chain, payer_index=2, payee=owner)
    uri, digest = _publish(files_host, "/r/alice.json", _file(chain, agent=agent, client=alice.lower(), value=100,
                           proof=_proof(chain, sender=alice.lower(), to=owner.lower(), tx=tx_alice)))  # fmt: skip
    chain.give(client=alice, agent_id=agent, value=100, uri=uri, file_hash=digest)
    # dave's payment is signed but not broadcast yet: the node does not know it when the feedback is indexed
    tx_dave, raw = _signed_transfer(chain, payer_index=6, payee=owner)
    uri, digest = _publish(files_host, "/r/dave.json", _file(chain, agent=agent, client=dave.lower(), value=60,
                           proof=_proof(chain, sender=dave.lower(), to=owner.lower(), tx=tx_dave)))  # fmt: skip
    chain.give(client=dave, agent_id=agent, value=60, uri=uri, file_hash=digest)

    deps = deps_factory("r")
    first = _sync(deps)
    key_alice, key_dave = (str(agent), alice.lower(), 1), (str(agent), dave.lower(), 1)
    assert (_rows(deps)[key_dave].status, _rows(deps)[key_dave].reason) == ("unverified", "payment-not-found")
    # open rows (dave's, and a never-mined one of an earlier test on this chain) are looked at again at the end
    open_rows = first.rechecked
    assert open_rows >= 1
    assert first.upgraded == 0

    dead = f"http://127.0.0.1:{free_port()}"
    network = f"eip155:{chain.registries.chain_id}"
    # the payment network's node is down: the open row keeps its reason (not rpc-failed), the verified one stays
    down = Erc8004Deps(engine=deps.engine, client=deps.client, files=deps.files,
                       payments=PaymentReader(sources={network: JsonRpcSource(url=dead, timeout=1)}))  # fmt: skip
    report = Erc8004Report()
    recheck_feedback(deps=down, report=report)
    assert (report.rechecked, report.upgraded) == (open_rows, 0)
    # the registry's node is down too: the re-check stops, nothing changes
    gone = Erc8004Deps(engine=deps.engine, files=deps.files, payments=down.payments,
                       client=RegistryClient(w3=Web3(Web3.HTTPProvider(dead, request_kwargs={"timeout": 1})),
                                             registries=chain.registries))  # fmt: skip
    stopped = Erc8004Report()
    recheck_feedback(deps=gone, report=stopped)
    assert stopped.recheck_error is not None
    assert stopped.upgraded == 0
    rows = _rows(deps)
    assert (rows[key_dave].status, rows[key_dave].reason) == ("unverified", "payment-not-found")
    assert (rows[key_alice].status, rows[key_alice].reason) == ("payment-verified", None)

    # the payment is broadcast and mined: the next sync's re-check upgrades dave's feedback
    anvil_node.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
    assert chain.w3.eth.wait_for_transaction_receipt(tx_dave, timeout=10)["status"] == 1  # type: ignore[arg-type]
    again = _sync(deps)
    assert (again.feedback, again.upgraded) == (0, 1)
    rows = _rows(deps)
    assert (rows[key_dave].status, rows[key_dave].reason, rows[key_dave].payment_tx) == (
        "payment-verified", None, tx_dave)  # fmt: skip
    assert (rows[key_alice].status, rows[key_alice].reason) == ("payment-verified", None)
    assert _sync(deps).rechecked == open_rows - 1  # dave's is settled: no longer open


def test_a_refused_chunk_insert_is_stored_row_by_row(
    chain: Deployed, deps_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's feedback goes in with one multi-row INSERT; when the database refuses it, each row is stored in its
    own savepoint and only the refused one becomes a reject (the rest, and the checkpoint, go on)."""
    accounts = chain.w3.eth.accounts
    services = [{"name": "DID", "endpoint": SERVICE_DID}]
    agent = chain.register(owner=accounts[1], uri=data_uri(registration(services=services)))
    for client, value in zip(accounts[2:5], (10, 20, 30), strict=True):
        chain.give(client=client, agent_id=agent, value=value)

    def refused_insert(*args: Any) -> Any:
        raise RuntimeError("the database refused the batch")

    real_add = erc8004_sync._add

    def add(session: Any, row: Any) -> None:
        if row.agent_id == str(agent) and row.value == "20":
            raise RuntimeError("the database refused this row")
        real_add(session, row)

    monkeypatch.setattr(erc8004_sync, "insert", refused_insert)
    monkeypatch.setattr(erc8004_sync, "_add", add)
    deps = deps_factory("f")
    report = _sync(deps)
    ours = {r.value: (r.status, r.reason, r.detail) for r in _rows(deps).values() if r.agent_id == str(agent)}
    assert ours == {
        "10": ("unverified", "no-feedback-file", ""),
        "20": ("rejected", "judge-failed", "storing raised RuntimeError"),
        "30": ("unverified", "no-feedback-file", ""),
    }
    assert report.feedback == len(_rows(deps))
    assert report.to_block == chain.w3.eth.block_number
