"""``EasReads.get_nonce`` on a JSON-RPC node posts hand-encoded ``getNonce(address)`` calldata straight to the
provider: the calldata must be what the ABI encoder makes, the answer decoded as uint256, and a node's error answer
(or a malformed one) a retryable ``ChainUnavailable``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from service.chain.eas_reads import EasReads
from service.chain.rpc import connect
from service.domain import Reason
from service.errors import ChainUnavailable
from tests.support.jsonrpc_node import jsonrpc_node

EAS = "0x4200000000000000000000000000000000000021"
ATTESTER = "0x00000000000000000000000000000000000000AB"


class Node:
    """Answers ``eth_call`` with ``answer`` (a JSON-RPC response body minus id) and records each call's params."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = {"result": "0x" + "00" * 32}
        self.calls: list[list[Any]] = []
        self.url = ""

    def __call__(self, method: str, params: list[Any]) -> dict[str, Any]:
        if method == "eth_call":
            self.calls.append(params)
        return self.answer


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    with jsonrpc_node(n) as n.url:
        yield n


def test_calldata_is_the_abi_encoding_and_the_answer_a_uint256(node: Node) -> None:
    reads = EasReads(w3=connect(rpc_url=node.url), eas_address=EAS)
    node.answer = {"result": "0x" + encode(["uint256"], [2**70 + 7]).hex()}
    assert reads.get_nonce(attester=ATTESTER) == 2**70 + 7
    ((call, block),) = node.calls
    expected = keccak(text="getNonce(address)")[:4] + encode(["address"], [ATTESTER])
    assert (call["to"].lower(), call["data"], block) == (EAS.lower(), "0x" + expected.hex(), "latest")


@pytest.mark.parametrize(
    "answer",
    [
        {"error": {"code": -32602, "message": "BlockOutOfRangeError: block height is 15 but requested was 14"}},
        {"result": "0x01"},  # not a uint256
        {"result": "0xzz"},
        {"result": None},
    ],
)
def test_an_error_or_malformed_answer_is_chain_unavailable(node: Node, answer: dict[str, Any]) -> None:
    reads = EasReads(w3=connect(rpc_url=node.url), eas_address=EAS)
    node.answer = answer
    with pytest.raises(ChainUnavailable) as caught:
        reads.get_nonce(attester=ATTESTER)
    assert caught.value.reason is Reason.RPC_FAILED


def test_an_unreachable_node_is_chain_unavailable() -> None:
    with jsonrpc_node(Node()) as url:
        pass
    with pytest.raises(ChainUnavailable):
        EasReads(w3=connect(rpc_url=url, timeout=2), eas_address=EAS).get_nonce(attester=ATTESTER)
