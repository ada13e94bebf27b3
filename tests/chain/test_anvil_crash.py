"""Crash safety against a real anvil (automine off so a transaction can sit in the mempool):

* the publisher process is SIGKILLed after persisting the tx hash and broadcasting, while waiting for the receipt;
  a restarted publisher settles it from the receipt — exactly one attestation;
* our transaction reverts because the same signed request landed first through someone else's transaction in
  the same block; the publisher finds that attestation instead of failing or resending.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS
from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from tests.support.anvil import AnvilNode, anvil_fixture

from .anvil_setup import booted_client
from .helpers import attested_count, make_review, sign_request
from .sqlite_outbox import SqliteOutbox

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(anvil_node: AnvilNode) -> EasClient:
    return booted_client(anvil_node, receipt_timeout=30)  # bootstrap needs automine: before manual_mining


@pytest.fixture
def manual_mining(anvil_node: AnvilNode, client: EasClient) -> Iterator[None]:
    anvil_node.rpc("evm_setAutomine", [False])
    try:
        yield
    finally:
        anvil_node.rpc("evm_setAutomine", [True])


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _in_mempool(node: AnvilNode, tx_hash: str | None) -> bool:
    if not tx_hash:
        return False
    tx = node.rpc("eth_getTransactionByHash", [tx_hash])
    return tx is not None and tx["blockNumber"] is None


def test_killed_while_waiting_for_the_receipt(
    anvil_node: AnvilNode, client: EasClient, manual_mining: None, tmp_path: Path
) -> None:
    reviewer = Account.create()
    request, _ = sign_request(client, reviewer, make_review(1))
    outbox = SqliteOutbox(tmp_path / "outbox.db")
    item_id = outbox.enqueue(request=request, key=client.content_key(request=request))

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.chain.publisher_proc", anvil_node.url, str(tmp_path / "outbox.db")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for(lambda: outbox.row(item_id)["state"] == "submitted"
                  and _in_mempool(anvil_node, outbox.row(item_id)["tx_hash"]))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    tx_hash = outbox.row(item_id)["tx_hash"]
    anvil_node.rpc("evm_mine")  # the transaction lands while nobody is watching

    restarted = EasClient(w3=client.w3, eas_address=EAS_ADDRESS, relayer=client.relayer)  # fresh nonce counter
    report = Publisher(client=restarted, outbox=outbox).drain()
    assert (report.confirmed, report.transactions) == (1, 0)
    row = outbox.row(item_id)
    assert row["state"] == "confirmed"
    assert row["tx_hash"] == tx_hash
    assert row["attempts"] == 1
    assert client.get_attestation(uid=row["uid"]).attester == reviewer.address
    assert attested_count(client, attester=reviewer.address) == 1
    assert client.get_nonce(attester=reviewer.address) == 1


def test_revert_after_someone_else_landed_it_first(
    anvil_node: AnvilNode, client: EasClient, manual_mining: None
) -> None:
    reviewer = Account.create()
    request, _ = sign_request(client, reviewer, make_review(2))

    # another relayer sends the same signed request with a higher tip: it is ordered first in the next block
    rival = Account.create()
    anvil_node.rpc("anvil_setBalance", [rival.address, hex(10**19)])
    base = client.w3.eth.get_block("latest")["baseFeePerGas"]
    rival_tx = rival.sign_transaction({
        "to": EAS_ADDRESS, "data": client.calldata(requests=[request]), "gas": 2_000_000, "nonce": 0,
        "chainId": client.chain_id, "maxPriorityFeePerGas": 5 * 10**9, "maxFeePerGas": 2 * base + 5 * 10**9,
        "value": 0,
    })
    rival_hash = "0x" + bytes(client.w3.eth.send_raw_transaction(rival_tx.raw_transaction)).hex()

    outbox = InMemoryOutbox()
    item_id = outbox.enqueue(request=request, key=client.content_key(request=request))
    publisher = Publisher(client=client, outbox=outbox)
    thread = threading.Thread(target=publisher.run_once, daemon=True)
    thread.start()
    _wait_for(lambda: _in_mempool(anvil_node, outbox.record(item_id=item_id).item.tx_hash))
    ours = outbox.record(item_id=item_id).item.tx_hash
    anvil_node.rpc("evm_mine")
    thread.join(timeout=30)

    assert client.receipt(tx_hash=rival_hash)["status"] == 1
    assert client.receipt(tx_hash=ours)["status"] == 0  # EAS refused the reused signature (nonce consumed)
    record = outbox.record(item_id=item_id)
    assert record.state == "confirmed"
    assert record.item.tx_hash == rival_hash
    assert attested_count(client, attester=reviewer.address) == 1
