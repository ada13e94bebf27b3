"""RPC outages against a real anvil: refused connections (node's port gone) and a hung node (timeouts) are
ChainUnavailable; the outbox driver backs off and publishes once the node is back."""

from __future__ import annotations

import threading
import time

import pytest
from eth_account import Account

from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from service.errors import ChainUnavailable
from tests.support.anvil import AnvilNode, anvil_fixture

from .anvil_setup import booted_client
from .helpers import attested_count, make_review, sign_request
from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()


def test_dead_port_is_chain_unavailable_fast(anvil_node: AnvilNode) -> None:
    client = booted_client(anvil_node)
    proxy = TcpProxy(target_port=anvil_node.port)
    proxy.down()
    dead = booted_client(anvil_node, url=proxy.url)
    started = time.monotonic()
    with pytest.raises(ChainUnavailable):
        dead.block_number()
    assert time.monotonic() - started < 2  # no hidden retry loop
    assert client.block_number() >= 0


def test_driver_backs_off_while_rpc_is_down_then_publishes(anvil_node: AnvilNode) -> None:
    proxy = TcpProxy(target_port=anvil_node.port)
    direct = booted_client(anvil_node)
    client = booted_client(anvil_node, url=proxy.url, timeout=2)
    reviewer = Account.create()
    request, _ = sign_request(direct, reviewer, make_review(1))
    outbox = InMemoryOutbox()
    item_id = outbox.enqueue(request=request, key=direct.content_key(request=request))
    proxy.down()

    waits: list[float] = []
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            proxy.up()  # the node comes back after four failed rounds
        if outbox.record(item_id=item_id).state == "confirmed" or len(waits) > 50:
            stop.set()
        time.sleep(min(seconds, 0.05))

    publisher = Publisher(client=client, outbox=outbox)
    publisher.run_forever(stop=stop, interval=0.01, backoff_initial=0.1, backoff_max=0.4, sleep=sleep)
    assert waits[:4] == [0.1, 0.2, 0.4, 0.4]  # exponential, capped
    assert outbox.record(item_id=item_id).state == "confirmed"
    assert attested_count(direct, attester=reviewer.address) == 1


def test_hung_node_times_out_then_recovers(anvil_node: AnvilNode) -> None:
    direct = booted_client(anvil_node)
    client = booted_client(anvil_node, timeout=0.5)
    reviewer = Account.create()
    request, _ = sign_request(direct, reviewer, make_review(2))
    outbox = InMemoryOutbox()
    item_id = outbox.enqueue(request=request, key=direct.content_key(request=request))
    publisher = Publisher(client=client, outbox=outbox)
    anvil_node.pause()
    try:
        started = time.monotonic()
        with pytest.raises(ChainUnavailable):
            publisher.run_once()
        assert time.monotonic() - started < 3
        assert outbox.record(item_id=item_id).state == "pending"  # nothing decided while blind
    finally:
        anvil_node.resume()
    assert publisher.drain().confirmed == 1
    assert attested_count(direct, attester=reviewer.address) == 1


def test_stale_relayer_nonce_is_resynced(anvil_node: AnvilNode) -> None:
    """Another process used the relayer key meanwhile: "nonce too low" → items released, counter resynced, sent."""
    client = booted_client(anvil_node)
    seeded = client._reserve_nonce()  # the local counter is now seeded from the node...
    client._next_nonce = seeded  # ...(nothing sent); then a second user of the key consumes that nonce
    rival = booted_client(anvil_node)
    request0, _ = sign_request(rival, Account.create(), make_review(5))
    rival.submit(requests=[request0])

    reviewer = Account.create()
    request, _ = sign_request(client, reviewer, make_review(6))
    outbox = InMemoryOutbox()
    item_id = outbox.enqueue(request=request, key=client.content_key(request=request))
    publisher = Publisher(client=client, outbox=outbox)
    first = publisher.run_once()
    assert first.released == 1
    assert "nonce too low" in outbox.record(item_id=item_id).last_error
    assert publisher.drain().confirmed == 1
    assert attested_count(client, attester=reviewer.address) == 1


def test_preflight_revert_isolates_the_bad_item() -> None:
    """A request that passes our checks but that EAS would refuse (the node's clock is ahead of ours, so its
    deadline has passed on chain) fails alone with the reason decoded from the revert selector; the rest of the
    batch lands. Its own node: the clock jump must not leak into other tests."""
    with AnvilNode.start() as node:
        client = booted_client(node)
        node.rpc("evm_increaseTime", [600])
        node.rpc("evm_mine")
        outbox = InMemoryOutbox()
        now = int(time.time())
        good = [sign_request(client, Account.create(), make_review(i))[0] for i in range(2)]
        late, _ = sign_request(client, Account.create(), make_review(9), deadline=now + 300)
        ids = [outbox.enqueue(request=r, key=client.content_key(request=r)) for r in (good[0], late, good[1])]
        before = client.w3.eth.get_transaction_count(client.relayer.address)
        report = Publisher(client=client, outbox=outbox).drain()
        assert (report.confirmed, report.failed) == (2, 1)
        assert outbox.record(item_id=ids[1]).last_error == "delegation-expired: DeadlineExpired"
        assert outbox.record(item_id=ids[0]).state == outbox.record(item_id=ids[2]).state == "confirmed"
        # the reverting batch never went on chain: only the two good single transactions did
        assert client.w3.eth.get_transaction_count(client.relayer.address) == before + 2
