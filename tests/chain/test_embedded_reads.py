"""The embedded chain answers reads of the last committed block without its lock: a request thread's getNonce /
getAttestation never waits while the publisher holds the lock to execute a block, and sees every block once it is
committed (in memory and in a chain file)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from service.chain.embedded import EmbeddedChain, start_embedded_chain

from .helpers import make_review, sign_request


def _while_locked(chain: EmbeddedChain, read: Callable[[], Any], *, wait: float = 10.0) -> tuple[bool, list[Any]]:
    """Run ``read`` on a thread while this thread holds the chain lock (as the publisher does during a block) for at
    most ``wait`` seconds. Returns whether it finished while the lock was held, and what it returned."""
    out: list[Any] = []
    reader = threading.Thread(target=lambda: out.append(read()), daemon=True)
    with chain.provider.lock:
        reader.start()
        reader.join(wait)
        finished = not reader.is_alive()
    reader.join(30)
    return finished, out


@pytest.fixture(params=["memory", "file"])
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> EmbeddedChain:
    return start_embedded_chain(path=":memory:" if request.param == "memory" else tmp_path / "c.chain")


def test_committed_reads_do_not_wait_for_the_lock_and_see_every_block(any_chain: EmbeddedChain) -> None:
    chain = any_chain
    client = chain.client()
    reviewer = Account.create()
    landed = client.submit(requests=[sign_request(client, reviewer, make_review(0))[0]])[0]
    # right after the block: the view already shows it (no stale read after our own write)
    assert client.get_nonce(attester=reviewer.address) == 1
    finished, out = _while_locked(chain, lambda: (client.get_nonce(attester=reviewer.address),
                                                  client.get_attestation(uid=landed.uid), client.block_number(),
                                                  client.chain_id))  # fmt: skip
    assert finished
    nonce, record, head, chain_id = out[0]
    assert nonce == 1
    assert record is not None
    assert record.attester == reviewer.address
    assert head == landed.block_number
    assert chain_id == chain.w3.eth.chain_id
    second = client.submit(requests=[sign_request(client, reviewer, make_review(1))[0]])[0]
    assert client.get_nonce(attester=reviewer.address) == 2
    assert client.block_number() == second.block_number
    chain.close()


def test_the_same_reads_through_the_lock_wait_for_it() -> None:
    chain = start_embedded_chain()
    client = chain.client()
    chain.provider.lockfree_reads = False  # the behaviour before: this is what the request threads waited for
    finished, out = _while_locked(chain, lambda: client.get_nonce(attester=chain.relayer.address), wait=1.0)
    assert not finished
    assert out == [0]  # it ran once the lock was released


def test_everything_else_still_takes_the_lock() -> None:
    chain = start_embedded_chain()
    client = chain.client()
    finished, _ = _while_locked(chain, lambda: client.block_hash(number=0), wait=1.0)
    assert not finished
