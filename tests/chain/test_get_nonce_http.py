"""``EasReads.get_nonce`` on a JSON-RPC node posts hand-encoded ``getNonce(address)`` calldata straight to the
provider (or, after ``post_reads_directly``, over its own kept-alive connections, ``service.http11``): the calldata
must be what the ABI encoder makes, the answer decoded as uint256, and a node's error answer (or a malformed one) a
retryable ``ChainUnavailable`` — on both paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from service.chain.eas_reads import EasReads
from service.chain.rpc import connect
from service.domain import Reason
from service.errors import ChainUnavailable
from tests.support.jsonrpc_node import NO_BATCHES, jsonrpc_node

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


def _reads(url: str, *, direct: bool, timeout: float = 10.0) -> EasReads:
    reads = EasReads(w3=connect(rpc_url=url, timeout=timeout), eas_address=EAS)
    if direct:
        reads.post_reads_directly(rpc_url=url, timeout=timeout)
    return reads


@pytest.fixture(params=[False, True], ids=["provider", "direct"])
def direct(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    with jsonrpc_node(n) as n.url:
        yield n


def test_calldata_is_the_abi_encoding_and_the_answer_a_uint256(node: Node, direct: bool) -> None:
    reads = _reads(node.url, direct=direct)
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
def test_an_error_or_malformed_answer_is_chain_unavailable(node: Node, answer: dict[str, Any], direct: bool) -> None:
    reads = _reads(node.url, direct=direct)
    node.answer = answer
    with pytest.raises(ChainUnavailable) as caught:
        reads.get_nonce(attester=ATTESTER)
    assert caught.value.reason is Reason.RPC_FAILED


def test_an_unreachable_node_is_chain_unavailable(direct: bool) -> None:
    with jsonrpc_node(Node()) as url:
        pass
    with pytest.raises(ChainUnavailable):
        _reads(url, direct=direct, timeout=2).get_nonce(attester=ATTESTER)


def _http11_node(*, status: int = 200, body: bytes | None = None, drop_after_each: bool = False) -> Any:
    """A keep-alive (HTTP/1.1) node answering every eth_call with nonce 5 (or ``status``/``body``). With
    ``drop_after_each`` it closes each connection after answering, without saying so (a node's idle timeout)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections: list[int] = []
    heads: list[tuple[str | None, str | None]] = []  # (Host, Authorization) of each request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def do_POST(self) -> None:
            heads.append((self.headers.get("Host"), self.headers.get("Authorization")))
            self.rfile.read(int(self.headers["Content-Length"]))
            out = body if body is not None else b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"0" * 63 + b'5"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            self.close_connection = drop_after_each

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.heads = heads  # type: ignore[attr-defined]
    return server, f"http://127.0.0.1:{server.server_address[1]}", connections


def test_direct_sends_url_credentials_as_basic_auth_and_keeps_them_out_of_host() -> None:
    server, url, _ = _http11_node()
    try:
        port = url.rsplit(":", 1)[1]
        assert _reads(f"http://rpc:s3cret@127.0.0.1:{port}", direct=True).get_nonce(attester=ATTESTER) == 5
        assert server.heads == [(f"127.0.0.1:{port}", "Basic cnBjOnMzY3JldA==")]  # base64("rpc:s3cret")
    finally:
        server.shutdown()
        server.server_close()


def test_direct_reuses_a_kept_alive_connection_and_retries_one_the_node_closed() -> None:
    server, url, connections = _http11_node()
    try:
        reads = _reads(url, direct=True)
        assert [reads.get_nonce(attester=ATTESTER) for _ in range(3)] == [5, 5, 5]
        assert len(connections) == 1  # one connection, kept alive
    finally:
        server.shutdown()
        server.server_close()
    server, url, connections = _http11_node(drop_after_each=True)
    try:
        reads = _reads(url, direct=True)
        assert [reads.get_nonce(attester=ATTESTER) for _ in range(3)] == [5, 5, 5]
        assert len(connections) == 3  # each dropped connection was replaced, no call failed
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "body"), [(500, b"{}"), (200, b"not json")])
def test_direct_http_error_or_garbage_is_chain_unavailable(status: int, body: bytes) -> None:
    server, url, _ = _http11_node(status=status, body=body)
    try:
        with pytest.raises(ChainUnavailable) as caught:
            _reads(url, direct=True).get_nonce(attester=ATTESTER)
        assert caught.value.reason is Reason.RPC_FAILED
    finally:
        server.shutdown()
        server.server_close()


def test_a_proxied_node_keeps_web3s_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.wiring import _proxied

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not _proxied("http://node.example:8545")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _proxied("http://node.example:8545")
    assert not _proxied("https://node.example")  # only http is proxied here
    monkeypatch.setenv("NO_PROXY", "node.example")
    assert not _proxied("http://node.example:8545")


def test_nonces_of_several_attesters_go_in_one_batch_and_come_back_in_order() -> None:
    nonces = {"0x" + f"{k:040x}": 7 * k for k in (1, 2, 3)}
    posts: list[Any] = []

    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        attester = "0x" + params[0]["data"][-40:]
        return {"result": "0x" + encode(["uint256"], [nonces[attester]]).hex()}

    with jsonrpc_node(answer, posts) as url:
        reads = _reads(url, direct=True)
        assert reads.get_nonces(attesters=list(nonces)) == nonces
    assert len(posts) == 1
    assert isinstance(posts[0], list)
    assert len(posts[0]) == 3


@pytest.mark.parametrize("answer", [{"error": {"code": -32000, "message": "boom"}}, {"result": "0x01"}])
def test_an_error_in_a_batch_is_chain_unavailable(answer: dict[str, Any]) -> None:
    with jsonrpc_node(lambda method, params: answer) as url, pytest.raises(ChainUnavailable) as caught:
        _reads(url, direct=True).get_nonces(attesters=[ATTESTER, "0x" + "cd" * 20])
    assert caught.value.reason is Reason.RPC_FAILED


def test_a_node_that_refuses_batches_is_read_one_call_at_a_time_from_then_on() -> None:
    posts: list[Any] = []
    attesters = ["0x" + f"{k:040x}" for k in (1, 2)]

    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        if method == "eth_getBlockByNumber":
            return {"result": {"hash": "0x" + params[0][2:].rjust(64, "0")}}
        return {"result": "0x" + encode(["uint256"], [int(params[0]["data"][-40:], 16)]).hex()}

    with jsonrpc_node(answer, posts, batch_refusal=NO_BATCHES) as url:
        reads = _reads(url, direct=True)
        assert reads.get_nonces(attesters=attesters) == {attesters[0]: 1, attesters[1]: 2}
        assert [isinstance(p, list) for p in posts] == [True, False, False]  # refused once, then one by one
        assert reads.block_hashes(numbers=[5, 6]) == {5: "0x" + "5".rjust(64, "0"), 6: "0x" + "6".rjust(64, "0")}
        assert not any(isinstance(p, list) for p in posts[3:])  # remembered: no batch tried again …
        reads._direct.refused_batch_at -= 301  # type: ignore[union-attr]  # … until BATCHES_OFF_SECONDS passed
        before = len(posts)
        reads.get_nonces(attesters=attesters)
        assert isinstance(posts[before], list)


@pytest.mark.parametrize(
    "refusal",
    [(200, [{"jsonrpc": "2.0", "id": 0, "error": {"code": -32600, "message": "batch too large"}}]), (413, {})],
    ids=["list-with-one-error", "http-413"],
)
def test_other_forms_of_a_refused_batch_fall_back_to_single_calls(refusal: tuple[int, Any]) -> None:
    """geth/erigon answer an over-limit batch with a list of one error; gateways with HTTP 400/413."""

    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        return {"result": "0x" + encode(["uint256"], [4]).hex()}

    with jsonrpc_node(answer, batch_refusal=refusal) as url:
        reads = _reads(url, direct=True)
        assert reads.get_nonces(attesters=[ATTESTER, "0x" + "cd" * 20]) == {ATTESTER: 4, "0x" + "cd" * 20: 4}


def test_a_batch_answer_missing_a_call_without_a_refusal_is_chain_unavailable() -> None:
    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        return {"result": "0x" + "00" * 32}

    with jsonrpc_node(answer) as url:
        reads = _reads(url, direct=True)
        assert reads._direct is not None
        real = reads._direct._pool.post

        def drop_one(body: bytes) -> Any:  # the node loses one answer of the batch
            response = real(body)
            answers = json.loads(response.body)
            return type(response)(status=response.status, body=json.dumps(answers[1:]).encode(),
                                  will_close=response.will_close)  # fmt: skip

        reads._direct._pool.post = drop_one  # type: ignore[method-assign]
        with pytest.raises(ChainUnavailable):
            reads.get_nonces(attesters=[ATTESTER, "0x" + "cd" * 20])


def test_many_reads_go_in_batches_of_bounded_size() -> None:
    posts: list[Any] = []
    with jsonrpc_node(lambda method, params: {"result": {"hash": "0x" + "ab" * 32}}, posts) as url:
        hashes = _reads(url, direct=True).block_hashes(numbers=list(range(70)))
    assert len(hashes) == 70
    assert [len(p) for p in posts] == [32, 32, 6]


@pytest.mark.parametrize("answer", [{}, {"result": "0x12"}, {"error": {"code": -1, "message": "no"}}])
def test_a_block_answer_without_a_block_is_chain_unavailable(answer: dict[str, Any]) -> None:
    with jsonrpc_node(lambda method, params: answer) as url, pytest.raises(ChainUnavailable) as caught:
        _reads(url, direct=True).block_hashes(numbers=[1, 2])
    assert caught.value.reason is Reason.RPC_FAILED


def test_a_block_beyond_the_head_has_no_hash() -> None:
    with jsonrpc_node(lambda method, params: {"result": None}) as url:
        assert _reads(url, direct=True).block_hashes(numbers=[9]) == {9: None}
