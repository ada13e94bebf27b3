"""``EasReads.get_nonce`` on a JSON-RPC node posts hand-encoded ``getNonce(address)`` calldata straight to the
provider: the calldata must be what the ABI encoder makes, the answer decoded as uint256, and a node's error answer
(or a malformed one) a retryable ``ChainUnavailable``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from service.chain.eas_reads import EasReads
from service.chain.rpc import connect
from service.domain import Reason
from service.errors import ChainUnavailable

EAS = "0x4200000000000000000000000000000000000021"
ATTESTER = "0x00000000000000000000000000000000000000AB"


class Node:
    """A loopback JSON-RPC endpoint answering ``eth_call`` with ``answer`` (a JSON-RPC response body minus id)."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = {"result": "0x" + "00" * 32}
        self.calls: list[list[Any]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if request["method"] == "eth_call":
                    node.calls.append(request["params"])
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], **node.answer}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    yield n
    n.server.shutdown()
    n.server.server_close()


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


def test_an_unreachable_node_is_chain_unavailable(node: Node) -> None:
    url = node.url
    node.server.shutdown()
    node.server.server_close()
    with pytest.raises(ChainUnavailable):
        EasReads(w3=connect(rpc_url=url, timeout=2), eas_address=EAS).get_nonce(attester=ATTESTER)
