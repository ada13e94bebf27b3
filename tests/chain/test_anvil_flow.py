"""Against a real anvil node: `omatrust chain bootstrap`, delegated attests signed with eth-account, refusals
before gas, single vs batched publishing, and the indexer finding attestations made by someone else."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from service.chain.calls import gas_for
from service.chain.codec import encode_review, review_recipient
from service.chain.deploy import eas_contract
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS
from service.chain.indexer import ReviewIndexer
from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from service.cli.main import main
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture

from .anvil_setup import booted_client
from .helpers import attested_count, make_review, relayer_state, sign_request

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()


def _bootstrap(node: AnvilNode, capsys: pytest.CaptureFixture[str], *, key: str | None) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMATRUST_RPC_URL", node.url)
        if key:
            mp.setenv("OMATRUST_RELAYER_KEY", key)
        else:
            mp.delenv("OMATRUST_RELAYER_KEY", raising=False)
        code = main(["chain", "bootstrap"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_bootstrap_is_idempotent_and_never_prints_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    with AnvilNode.start() as fresh:  # its own node: this test needs one without EAS, whatever ran before
        _check_bootstrap(fresh, capsys)


def _check_bootstrap(anvil_node: AnvilNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _bootstrap(anvil_node, capsys, key=None)
    assert code == 1
    assert "not registered and no relayer key" in out
    assert "placed EAS at 0x4200000000000000000000000000000000000021" in out
    code, out = _bootstrap(anvil_node, capsys, key=ANVIL_DEV_KEY_0)
    assert code == 0, out
    assert "already present" in out
    assert f"registered User Review schema {USER_REVIEW_SCHEMA_UID}" in out
    code, out = _bootstrap(anvil_node, capsys, key=ANVIL_DEV_KEY_0)
    assert code == 0
    assert "already registered" in out
    assert "placed" not in out
    assert ANVIL_DEV_KEY_0[2:] not in out


@pytest.fixture(scope="module")
def client(anvil_node: AnvilNode) -> EasClient:
    return booted_client(anvil_node)


def test_placed_eas_has_the_right_domain(client: EasClient) -> None:
    assert client.chain_id == 31337
    eas = eas_contract(w3=client.w3, address=EAS_ADDRESS).functions
    assert eas.getName().call() == "EAS"
    assert eas.version().call() == "1.4.0"
    typed = client.build_attest_typed_data(attester="0x" + "11" * 20, data=b"", recipient="0x" + "22" * 20,
                                           deadline=1, nonce=0)
    assert encode_typed_data(full_message=typed).header == bytes(eas.getDomainSeparator().call())
    assert client.domain.version == "1.4.0"


def test_signed_typed_data_lands_with_reviewer_as_attester(client: EasClient) -> None:
    reviewer = Account.create()
    review = make_review(1)
    request, _ = sign_request(client, reviewer, review)
    [landed] = client.submit(requests=[request])
    record = client.get_attestation(uid=landed.uid)
    assert record is not None
    assert record.attester == reviewer.address
    assert record.recipient == review_recipient(subject=review.subject)
    assert record.data == encode_review(review=review)
    receipt = client.w3.eth.get_transaction_receipt(landed.tx_hash)
    assert receipt["from"] == client.relayer.address  # the relayer paid
    assert receipt["gasUsed"] <= gas_for(data_lengths=[len(request.data)])


def test_refusals_before_gas(client: EasClient) -> None:
    import time
    from dataclasses import replace

    reviewer = Account.create()
    review = make_review(2)
    request, _ = sign_request(client, reviewer, review)
    client.submit(requests=[request])
    cases = [
        (replace(request, data=encode_review(review=replace(review, rating_value=1))),
         Reason.DELEGATION_SIGNER_MISMATCH),
        (sign_request(client, reviewer, review, deadline=int(time.time()) - 1)[0], Reason.DELEGATION_EXPIRED),
        (request, Reason.DELEGATION_NONCE),  # replay: nonce 0 already used
    ]
    before = relayer_state(client)
    for bad, reason in cases:
        with pytest.raises(ChainRejected) as info:
            client.submit(requests=[bad])
        assert info.value.reason is reason
    assert relayer_state(client) == before
    assert attested_count(client, attester=reviewer.address) == 1


def test_single_vs_batched_publishing(client: EasClient) -> None:
    outbox = InMemoryOutbox()
    publisher = Publisher(client=client, outbox=outbox)
    reviewers = [Account.create() for _ in range(4)]
    request, _ = sign_request(client, reviewers[0], make_review(0))
    outbox.enqueue(request=request, key=client.content_key(request=request))
    single = publisher.drain()
    assert (single.confirmed, single.transactions) == (1, 1)
    for i, r in enumerate(reviewers):
        req, _ = sign_request(client, r, make_review(i))
        outbox.enqueue(request=req, key=client.content_key(request=req))
    batched = publisher.drain()
    assert (batched.confirmed, batched.transactions) == (4, 1)
    tx_hashes = {rec.item.tx_hash for rec in outbox.records()}
    assert len(tx_hashes) == 2
    for rec in outbox.records():
        onchain = client.get_attestation(uid=rec.uid)
        assert onchain is not None
        assert onchain.attester == rec.item.request.attester
        assert onchain.recipient == rec.item.request.recipient
    for tx_hash in tx_hashes:  # the gas model is an upper bound on anvil too, and not a loose one
        gas = client.w3.eth.get_transaction(tx_hash)["gas"]
        used = client.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"]
        assert 0.8 * gas < used <= gas, (used, gas)


def test_indexer_finds_direct_attest_by_another_account_and_resumes(client: EasClient) -> None:
    w3 = client.w3
    indexer = ReviewIndexer(client=client, chunk_blocks=3)
    first = list(indexer.sync(checkpoint=None))
    assert first
    assert all(c.to_block - c.from_block < 3 for c in first)
    checkpoint = first[-1].checkpoint
    seen = {r.uid for c in first for r in c.reviews}

    # someone else, not through our publisher: a funded account calls EAS.attest itself
    other = Account.create()
    w3.provider.make_request("anvil_setBalance", [other.address, hex(10**18)])  # type: ignore[arg-type]
    review = make_review(7, body="attested directly, no relayer")
    tx = eas_contract(w3=w3, address=EAS_ADDRESS).functions.attest(
        (bytes.fromhex(USER_REVIEW_SCHEMA_UID[2:]),
         (review_recipient(subject=review.subject), 0, False, b"\x00" * 32, encode_review(review=review), 0))
    ).build_transaction({"from": other.address, "nonce": 0, "gas": 1_500_000, "chainId": 31337,
                         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    tx_hash = w3.eth.send_raw_transaction(other.sign_transaction(tx).raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash)
    # and garbage data under the schema: reported, not crashing the indexer
    garbage = eas_contract(w3=w3, address=EAS_ADDRESS).functions.attest(
        (bytes.fromhex(USER_REVIEW_SCHEMA_UID[2:]), ("0x" + "33" * 20, 0, False, b"\x00" * 32, b"\x01\x02", 0))
    ).build_transaction({"from": other.address, "nonce": 1, "gas": 500_000, "chainId": 31337,
                         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(other.sign_transaction(garbage).raw_transaction))

    resumed = list(indexer.sync(checkpoint=checkpoint))
    assert resumed[0].from_block == checkpoint + 1
    new = [r for c in resumed for r in c.reviews]
    assert not {r.uid for r in new} & seen  # nothing re-read without a rewind window
    direct = [r for r in new if r.attester == other.address]
    assert len(direct) == 2
    good, bad = sorted(direct, key=lambda r: r.review is None)
    assert good.review == review
    assert good.recipient == review_recipient(subject=review.subject)
    assert good.tx_hash == "0x" + bytes(tx_hash).hex()
    assert good.time > 0
    assert bad.review is None
    assert bad.error is Reason.ATTESTATION_DATA_INVALID

    # a rewind window re-reads the last blocks; the caller dedupes by uid
    rewinding = ReviewIndexer(client=client, rewind=5)
    again = [r.uid for c in rewinding.sync(checkpoint=resumed[-1].checkpoint) for r in c.reviews]
    assert set(again) <= {r.uid for r in new} | seen
    # confirmations: never read past head - confirmations
    safe = ReviewIndexer(client=client, confirmations=2)
    chunks = list(safe.sync(checkpoint=None))
    assert chunks[-1].to_block == client.block_number() - 2


def test_nonces_in_one_batch_are_the_ones_read_one_by_one(anvil_node: AnvilNode, client: EasClient) -> None:
    """``get_nonces`` (one JSON-RPC batch over the direct connection; the publisher's pre-check) equals ``get_nonce``
    per attester, and a relayer client built for a worker shares the direct reads."""
    used, fresh = Account.create(), Account.create()
    for i in range(2):
        request, _ = sign_request(client, used, make_review(10 + i))
        client.submit(requests=[request])
    direct = booted_client(anvil_node)
    direct.post_reads_directly(rpc_url=anvil_node.url, timeout=5.0)
    attesters = [used.address, fresh.address, used.address.lower()]
    batched = direct.get_nonces(attesters=attesters)
    assert batched == {a: client.get_nonce(attester=a) for a in attesters}
    assert batched[used.address] == 2
    assert batched[fresh.address] == 0
    worker_side = booted_client(anvil_node)
    worker_side.share_direct_reads(source=direct)
    assert worker_side.get_nonces(attesters=attesters) == batched


def test_block_hashes_in_one_batch_are_the_ones_read_one_by_one(anvil_node: AnvilNode, client: EasClient) -> None:
    direct = booted_client(anvil_node)
    direct.post_reads_directly(rpc_url=anvil_node.url, timeout=5.0)
    head = client.block_number()
    numbers = [0, head, head - 1, head, head + 50]  # repeated, out of order, and beyond the head
    assert direct.block_hashes(numbers=numbers) == {n: client.block_hash(number=n) for n in numbers}
    assert direct.block_hashes(numbers=[head + 50]) == {head + 50: None}
