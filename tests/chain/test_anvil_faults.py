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
