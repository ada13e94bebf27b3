"""Publisher + outbox on the embedded chain: single and batched, refusals, idempotency, crash recovery, gas model."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from eth_account import Account

from service.chain.calls import gas_for
from service.chain.codec import decode_review, encode_review
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EmbeddedChain
from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from service.domain import Reason

from .helpers import attested_count, make_review, relayer_state, sign_request


def _enqueue(outbox: InMemoryOutbox, client: EasClient, request) -> int:
    return outbox.enqueue(request=request, key=client.content_key(request=request))


def _check_landed(client: EasClient, outbox: InMemoryOutbox, item_id: int) -> None:
    record = outbox.record(item_id=item_id)
    assert record.state == "confirmed", record
    onchain = client.get_attestation(uid=record.uid)
    request = record.item.request
    assert onchain is not None
    assert (onchain.attester, onchain.recipient, onchain.data) == (request.attester, request.recipient, request.data)
    assert decode_review(data=onchain.data).subject.startswith("did:web:")


def test_single_then_batched(client: EasClient) -> None:
    outbox = InMemoryOutbox()
    publisher = Publisher(client=client, outbox=outbox)
    alice = Account.create()
    first = _enqueue(outbox, client, sign_request(client, alice, make_review(0))[0])
    report = publisher.drain()
    assert (report.confirmed, report.transactions) == (1, 1)
    _check_landed(client, outbox, first)

    # three reviewers, two reviews each with consecutive EAS nonces, interleaved → one multiAttestByDelegation
    reviewers = [alice, Account.create(), Account.create()]
    ids = []
    for k in range(2):
        for j, reviewer in enumerate(reviewers):
            nonce = client.get_nonce(attester=reviewer.address) + k
            ids.append(_enqueue(outbox, client, sign_request(client, reviewer, make_review(j + 3 * k),
                                                             nonce=nonce)[0]))
    # the outbox keeps enqueue order; nonces of each attester must be consecutive *within* its group, and EAS
    # processes groups in order — interleaving attesters still works because each group is one attester
    report = publisher.drain()
    assert (report.confirmed, report.transactions) == (6, 1), report
    for item_id in ids:
        _check_landed(client, outbox, item_id)
    assert client.get_nonce(attester=alice.address) == 3


def test_idempotent_enqueue(client: EasClient) -> None:
    outbox = InMemoryOutbox()
    request, _ = sign_request(client, Account.create(), make_review(1))
    assert _enqueue(outbox, client, request) == _enqueue(outbox, client, request)
    assert Publisher(client=client, outbox=outbox).drain().confirmed == 1


def test_bad_items_fail_before_gas_and_do_not_sink_the_batch(client: EasClient) -> None:
    outbox = InMemoryOutbox()
    good, late = Account.create(), Account.create()
    ok = [_enqueue(outbox, client, sign_request(client, good, make_review(i), nonce=i)[0]) for i in range(2)]
    expired = _enqueue(outbox, client, sign_request(client, late, make_review(2), deadline=int(time.time()) - 5)[0])
    # its successor (nonce 1) can never land once nonce 0 is refused
    orphan = _enqueue(outbox, client, sign_request(client, late, make_review(3), nonce=1)[0])
    request, _ = sign_request(client, Account.create(), make_review(4))
    tampered = _enqueue(outbox, client, replace(request, attester=good.address, nonce=2))
    before_balance, before_count = relayer_state(client)
    report = Publisher(client=client, outbox=outbox).drain()
    assert report.confirmed == 2
    assert report.failed == 3
    assert report.transactions == 1
    assert relayer_state(client)[1] == before_count + 1
    assert relayer_state(client)[0] < before_balance
    for item_id in ok:
        _check_landed(client, outbox, item_id)
    reasons = {i: outbox.record(item_id=i).last_error.split(":")[0] for i in (expired, orphan, tampered)}
    assert reasons == {
        expired: Reason.DELEGATION_EXPIRED.value,
        orphan: Reason.DELEGATION_NONCE.value,
        tampered: Reason.DELEGATION_SIGNER_MISMATCH.value,
    }


def test_gas_cap_splits_transactions_and_gas_model_is_an_upper_bound(chain: EmbeddedChain) -> None:
    body = "x" * 900
    size = len(encode_review(review=make_review(0, body=body)))
    client = chain.client(gas_cap=gas_for(data_lengths=[size] * 2))  # two per transaction; three exceed the cap
    outbox = InMemoryOutbox()
    reviewers = [Account.create() for _ in range(5)]
    for i, r in enumerate(reviewers):
        _enqueue(outbox, client, sign_request(client, r, make_review(i, body=body))[0])
    report = Publisher(client=client, outbox=outbox).drain()
    assert report.confirmed == 5
    assert report.transactions == 3
    txs = {rec.item.tx_hash for rec in outbox.records()}
    for tx_hash in txs:
        tx = client.w3.eth.get_transaction(tx_hash)
        used = client.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"]
        assert tx["gas"] <= client.gas_cap
        assert 0.8 * tx["gas"] < used <= tx["gas"], (used, tx["gas"])


def test_crash_after_tx_hash_persisted_before_broadcast(chain: EmbeddedChain) -> None:
    class Crash(BaseException):
        pass

    class CrashingOutbox(InMemoryOutbox):
        def mark_submitted(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().mark_submitted(**kwargs)
            raise Crash  # the process dies right after the hash is durable

    outbox = CrashingOutbox()
    client = chain.client()
    reviewer = Account.create()
    item_id = _enqueue(outbox, client, sign_request(client, reviewer, make_review(1))[0])
    with pytest.raises(Crash):
        Publisher(client=client, outbox=outbox).run_once()
    assert outbox.record(item_id=item_id).state == "submitted"

    restarted = InMemoryOutbox()  # same rows, a fresh process (new client: fresh relayer nonce counter)
    restarted._rows, restarted._by_key = outbox._rows, outbox._by_key
    fresh = chain.client()
    report = Publisher(client=fresh, outbox=restarted).drain()
    assert report.confirmed == 1
    assert report.released == 1
    assert restarted.record(item_id=item_id).item.attempts == 2
    _check_landed(fresh, restarted, item_id)
    assert attested_count(fresh, attester=reviewer.address) == 1


def test_landed_elsewhere_is_found_not_resent(chain: EmbeddedChain) -> None:
    """The item's recorded transaction is unknown (lost), but its signed request reached the chain another way:
    recovery finds the attestation by attester + recipient + data + signature; nothing is sent again."""
    client = chain.client()
    reviewer = Account.create()
    request, _ = sign_request(client, reviewer, make_review(2))
    outbox = InMemoryOutbox()
    item_id = _enqueue(outbox, client, request)
    outbox.mark_submitted(item_ids=[item_id], tx_hash="0x" + "ab" * 32, submitted_block=client.block_number(), now=0)
    other_relayer = chain.client(relayer=chain.dev_accounts[0])
    [landed] = other_relayer.submit(requests=[request])
    before = relayer_state(client)
    report = Publisher(client=client, outbox=outbox).drain()
    assert report.confirmed == 1
    assert report.transactions == 0
    assert relayer_state(client) == before
    record = outbox.record(item_id=item_id)
    assert (record.uid, record.item.tx_hash) == (landed.uid, landed.tx_hash)
    assert attested_count(client, attester=reviewer.address) == 1


def test_unknown_tx_with_consumed_nonce_fails(chain: EmbeddedChain) -> None:
    client = chain.client()
    reviewer = Account.create()
    request, _ = sign_request(client, reviewer, make_review(2))
    other, _ = sign_request(client, reviewer, make_review(3))  # same nonce 0, different content
    outbox = InMemoryOutbox()
    item_id = _enqueue(outbox, client, request)
    outbox.mark_submitted(item_ids=[item_id], tx_hash="0x" + "cd" * 32, submitted_block=client.block_number(), now=0)
    client.submit(requests=[other])
    Publisher(client=client, outbox=outbox).drain()
    record = outbox.record(item_id=item_id)
    assert record.state == "failed"
    assert record.last_error.startswith(Reason.DELEGATION_NONCE.value)


def test_driver_thread_publishes_on_wakeup(chain: EmbeddedChain) -> None:
    client = chain.client()
    outbox = InMemoryOutbox()
    publisher = Publisher(client=client, outbox=outbox)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run_forever, kwargs={"stop": stop, "interval": 30.0}, daemon=True)
    thread.start()
    try:
        reviewer = Account.create()
        item_id = _enqueue(outbox, client, sign_request(client, reviewer, make_review(1))[0])
        publisher.wakeup()
        deadline = time.monotonic() + 10
        while outbox.record(item_id=item_id).state != "confirmed" and time.monotonic() < deadline:
            time.sleep(0.02)
        _check_landed(client, outbox, item_id)
    finally:
        stop.set()
        publisher.wakeup()
        thread.join(timeout=10)
    assert not thread.is_alive()
