"""The JSON-RPC source's HTTP/1.1 client (``service.http11``) against a scripted node on loopback: every
framing a node may answer with (Content-Length, chunked, until close, interim 1xx), connection reuse and closing,
TLS, and every broken answer seen as ``ChainUnavailable`` (RPC_FAILED) — never another exception."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from service import http11
from service.domain import Reason
from service.errors import ChainUnavailable
from service.payments.sources import JsonRpcSource
from tests.support.http_wire import read_request

NET = "eip155:8453"
TX = "0x" + "ab" * 32
PAYER, PAYTO, ASSET = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
RECEIPT = {
    "status": "0x1", "blockNumber": "0xc", "blockHash": "0x" + "CD" * 32, "from": PAYER.upper().replace("0X", "0x"),
    "to": ASSET, "logs": [{"address": ASSET, "data": "0x" + "00" * 31 + "0A",
                           "topics": [TRANSFER, "0x" + "00" * 12 + PAYER[2:], "0x" + "00" * 12 + PAYTO[2:]]}],
}  # fmt: skip


def answer(request: Any, *, receipt: Any = RECEIPT, tx: Any = None) -> bytes:
    """The node's JSON-RPC answer to a batch: the receipt, the head (block 0x10), the transaction."""
    results = {"eth_getTransactionReceipt": receipt, "eth_blockNumber": "0x10", "eth_getTransactionByHash": tx}
    return json.dumps([{"jsonrpc": "2.0", "id": c["id"], "result": results[c["method"]]} for c in request]).encode()


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in ("HTTP/1.1 200 OK", "Content-Type: application/json", *extra))
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


Reply = Callable[[Any], bytes | None]  # the JSON request → the raw bytes sent back (None: close without a word)


@dataclass
class ScriptedNode:
    """A loopback TCP server (TLS with ``tls``) answering each request with the next scripted reply; a connection is
    closed after a reply that is not kept alive (``close`` in it, or no framing) or when the script says so."""

    tls: ssl.SSLContext | None = None
    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[int, bytes, Any]] = field(default_factory=list)  # (connection number, head, JSON body)
    connections: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}/rpc"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        try:
            conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
        except (ssl.SSLError, OSError):
            raw.close()
            return
        buf = b""
        with conn:
            while True:
                got = read_request(conn, buf)
                if got is None:
                    return
                head, data, buf = got
                body = json.loads(data)
                with self._lock:
                    self.requests.append((number, head, body))
                    reply = self.replies.pop(0) if self.replies else None
                out = reply(body) if reply else None
                if out is None:
                    return
                conn.sendall(out)
                if _closes(out.lower()):
                    return


def _closes(reply: bytes) -> bool:
    """Whether a node closes the connection after sending ``reply`` (lower-case)."""
    framed = b"content-length:" in reply or b"transfer-encoding: chunked" in reply
    old = reply.startswith(b"http/1.0") and b"connection: keep-alive" not in reply
    return b"connection: close" in reply or old or not framed


@pytest.fixture
def node() -> Iterator[ScriptedNode]:
    n = ScriptedNode()
    yield n
    n.close()


def settled(request: Any) -> bytes:
    return ok(answer(request))


def test_a_settled_read_is_one_request_and_the_connection_is_kept(node: ScriptedNode) -> None:
    node.replies += [settled, settled]
    source = JsonRpcSource(url=node.url())
    seen = source.observe(network=NET, transaction=TX)
    assert (seen.mined, seen.known, seen.status, seen.block_number, seen.head, seen.confirmations) == (
        True, True, 1, 12, 16, 5)  # fmt: skip
    assert (seen.tx_from, seen.tx_to, seen.block_hash) == (PAYER, ASSET, "0x" + "cd" * 32)
    [log] = seen.logs
    assert (log.address, log.topics[0], log.data) == (ASSET, TRANSFER, "0x" + "00" * 31 + "0a")
    source.observe(network=NET, transaction=TX)
    assert [(number, [c["method"] for c in body]) for number, _, body in node.requests] == [
        (1, ["eth_getTransactionReceipt", "eth_blockNumber"])] * 2  # fmt: skip
    head = node.requests[0][1].decode().lower().split("\r\n")
    assert head[0] == "post /rpc http/1.1"
    assert {f"host: localhost:{node.port}", "content-type: application/json", "accept-encoding: identity"} <= set(head)
    source.close()


def test_without_a_receipt_the_transaction_tells_pending_from_unknown(node: ScriptedNode) -> None:
    node.replies += [lambda r: ok(answer(r, receipt=None)), lambda r: ok(answer(r, tx={"hash": TX}))]
    node.replies += [lambda r: ok(answer(r, receipt=None)), lambda r: ok(answer(r, tx=None))]
    source = JsonRpcSource(url=node.url())
    pending = source.observe(network=NET, transaction=TX)
    unknown = source.observe(network=NET, transaction=TX)
    assert [(o.known, o.mined, o.head) for o in (pending, unknown)] == [(True, False, 16), (False, False, 16)]
    assert [[c["method"] for c in body] for _, _, body in node.requests][:2] == [
        ["eth_getTransactionReceipt", "eth_blockNumber"], ["eth_getTransactionByHash"]]  # fmt: skip
    source.close()


def chunked(request: Any) -> bytes:
    body = answer(request)
    parts = [body[:7], body[7:100], body[100:]]
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        (chunked, True),
        (lambda r: b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + answer(r), False),  # until close
        (lambda r: ok(answer(r), "Connection: close"), False),
        (lambda r: ok(answer(r)).replace(b"HTTP/1.1", b"HTTP/1.0"), False),  # 1.0 without keep-alive
        (lambda r: ok(answer(r), "Connection: keep-alive").replace(b"HTTP/1.1", b"HTTP/1.0"), True),
        (lambda r: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + ok(answer(r)), True),
    ],
    ids=["chunked", "until-close", "connection-close", "http-1.0", "http-1.0-keep-alive", "interim-1xx"],
)
def test_every_framing_is_read_and_a_closing_answer_is_not_reused(node: ScriptedNode, reply: Reply, kept: bool) -> None:
    node.replies += [reply, settled]
    source = JsonRpcSource(url=node.url())
    assert source.observe(network=NET, transaction=TX).status == 1
    assert source.observe(network=NET, transaction=TX).status == 1
    assert [number for number, _, _ in node.requests] == ([1, 1] if kept else [1, 2])
    source.close()


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (lambda r: b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP 500"),
        (lambda r: ok(b"<html>busy</html>"), "not JSON"),
        (lambda r: ok(json.dumps({"jsonrpc": "2.0", "id": 1, "result": None}).encode()), "batch"),
        (
            lambda r: ok(json.dumps([{"id": 1, "error": {"code": -32000}}, {"id": 2, "result": "0x1"}]).encode()),
            "-32000",
        ),
        (
            lambda r: ok(json.dumps([{"id": 1, "result": "0xzz"}, {"id": 2, "result": "0x1"}]).encode()),
            "unexpected answer",
        ),
        (lambda r: ok(answer(r, receipt={**RECEIPT, "blockNumber": "zz"})), "unexpected answer"),
        (lambda r: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "BadResponse"),
        (lambda r: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789", "Content-Length"),
        (lambda r: b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (lambda r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding"),
        (lambda r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n[1,2]\r\n0\r\n\r\n", "chunk size"),
        (lambda r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1,2]XX0\r\n\r\n", "CRLF"),
        (lambda r: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 900\r\n\r\n" + answer(r)[:50], "inside"),
        (lambda r: b"HTTP/1.1 200 OK\r\nContent-Le", "inside the answer's head"),
        (lambda r: b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "header line"),
        (lambda r: b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + ok(answer(r)), "interim"),
        (lambda r: None, "without answering"),  # closed on a fresh connection: not retried
    ],
    ids=[
        "http-500",
        "not-json",
        "not-a-batch",
        "rpc-error",
        "bad-result",
        "bad-receipt",
        "not-http",
        "conflicting-length",
        "bad-length",
        "unknown-coding",
        "bad-chunk-size",
        "chunk-without-crlf",
        "closed-in-body",
        "closed-in-head",
        "bad-header",
        "endless-interim",
        "closed-at-once",
    ],
)
def test_a_broken_answer_is_rpc_failed(node: ScriptedNode, reply: Reply, detail: str) -> None:
    node.replies.append(reply)
    source = JsonRpcSource(url=node.url(), timeout=5.0)
    with pytest.raises(ChainUnavailable) as caught:
        source.observe(network=NET, transaction=TX)
    assert caught.value.reason is Reason.RPC_FAILED
    assert detail in caught.value.detail
    assert len(node.requests) == 1
    source.close()


def test_an_answer_over_the_size_limit_is_refused(node: ScriptedNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http11, "MAX_BODY", 100)
    node.replies += [settled, chunked, lambda r: b"HTTP/1.0 200 OK\r\n\r\n" + answer(r)]
    source = JsonRpcSource(url=node.url())
    for _ in range(3):
        with pytest.raises(ChainUnavailable, match="too large"):
            source.observe(network=NET, transaction=TX)
    source.close()


def test_a_node_that_never_answers_times_out(node: ScriptedNode) -> None:
    gate = threading.Event()

    def silent(request: Any) -> None:  # holds the connection open without a word, then closes it
        gate.wait(10)

    node.replies.append(silent)
    source = JsonRpcSource(url=node.url(), timeout=0.2)
    try:
        with pytest.raises(ChainUnavailable, match="TimeoutError"):
            source.observe(network=NET, transaction=TX)
    finally:
        gate.set()
        source.close()


def test_a_kept_alive_connection_closed_by_the_node_is_retried_once(node: ScriptedNode) -> None:
    node.replies += [settled, lambda r: None, settled, lambda r: None, lambda r: None]
    source = JsonRpcSource(url=node.url())
    source.observe(network=NET, transaction=TX)
    assert source.observe(network=NET, transaction=TX).status == 1  # closed without answering: sent again
    assert [number for number, _, _ in node.requests] == [1, 1, 2]
    with pytest.raises(ChainUnavailable, match="without answering"):
        source.observe(network=NET, transaction=TX)  # sent again once; a new connection closed too is a failure
    assert [number for number, _, _ in node.requests] == [1, 1, 2, 2, 3]
    source.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_node(ca: trustme.CA) -> Iterator[ScriptedNode]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    n = ScriptedNode(tls=server)
    yield n
    n.close()


def test_https_checks_the_certificate(tls_node: ScriptedNode, ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    tls_node.replies += [settled, settled]
    source = JsonRpcSource(url=tls_node.url(), tls=trusting)
    assert source.observe(network=NET, transaction=TX).status == 1
    assert source.observe(network=NET, transaction=TX).status == 1
    assert [number for number, _, _ in tls_node.requests] == [1, 1]
    source.close()
    untrusting = JsonRpcSource(url=tls_node.url())  # the system's trust store does not know this CA
    with pytest.raises(ChainUnavailable, match="SSLCertVerificationError"):
        untrusting.observe(network=NET, transaction=TX)
    wrong_name = JsonRpcSource(url=tls_node.url().replace("localhost", "127.0.0.1"), tls=trusting)
    with pytest.raises(ChainUnavailable, match="SSLCertVerificationError"):
        wrong_name.observe(network=NET, transaction=TX)
