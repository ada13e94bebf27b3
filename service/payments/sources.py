"""Where an observation comes from: a JSON-RPC node over HTTP (one batched POST per transaction, which can be sent
ahead and read later: ``PipelinedSource``), or an in-process web3 (the embedded chain, which has no HTTP
endpoint)."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from service.domain import Reason, TxLog, TxObservation
from service.errors import ChainUnavailable


class TxSource(Protocol):
    def observe(self, *, network: str, transaction: str) -> TxObservation:
        """Read the transaction's receipt, whether the node knows it, and the head block.

        Raises:
            ChainUnavailable(RPC_FAILED): the node could not be read.
        """
        ...


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if hasattr(value, "hex") and not isinstance(value, str):
        text = str(value.hex())
        return text if text.startswith("0x") else "0x" + text
    return str(value).lower()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def observation_from(
    *, network: str, transaction: str, head: Any, receipt: Mapping[str, Any] | None, tx: Mapping[str, Any] | None
) -> TxObservation:
    """Build an observation from JSON-RPC (hex strings) or web3 (ints/bytes) shaped answers."""
    if receipt is None:
        known = tx is not None
        return TxObservation(network=network, transaction=transaction, head=_int(head), mined=False, known=known)
    logs = tuple(
        TxLog(
            address=str(log["address"]).lower(),
            topics=tuple(_hex(t).lower() for t in log.get("topics", ())),
            data=_hex(log.get("data", "0x")).lower(),
        )
        for log in receipt.get("logs", ())
    )
    to = receipt.get("to")
    return TxObservation(
        network=network,
        transaction=transaction,
        head=_int(head),
        mined=True,
        known=True,
        status=_int(receipt.get("status", 0)),
        block_number=_int(receipt["blockNumber"]),
        block_hash=_hex(receipt.get("blockHash", "")).lower(),
        tx_from=str(receipt.get("from", "")).lower() or None,
        tx_to=str(to).lower() if to else None,
        logs=logs,
    )


class PendingRead(Protocol):
    """A read whose request is sent and whose answer is not read yet (``PipelinedSource.begin``)."""

    def finish(self) -> TxObservation:
        """Read and decode the answer (at most once).

        Raises:
            ChainUnavailable(RPC_FAILED): the node could not be read.
        """
        ...

    def abandon(self) -> None:
        """Drop the read without its answer."""
        ...


@runtime_checkable
class PipelinedSource(Protocol):
    """A source that can send a read now and take its answer later, so the round trip overlaps other work."""

    def begin(self, *, network: str, transaction: str) -> PendingRead:
        """Send the read for ``transaction``.

        Raises:
            ChainUnavailable(RPC_FAILED): the request could not be sent.
        """
        ...


_RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class JsonRpcSource:
    """A JSON-RPC node over HTTP(S). One batch request per observation: ``eth_getTransactionReceipt``,
    ``eth_getTransactionByHash`` (to tell pending from unknown) and ``eth_blockNumber`` travel together, so a check
    costs one round trip. Kept-alive connections are reused across reads (a read whose reused connection the node
    had closed is retried once on a new one). ``begin`` sends the batch and returns without waiting, so the round
    trip can overlap other work; ``observe`` is ``begin`` + ``finish``. Thread-safe: a pending read owns its
    connection."""

    def __init__(self, *, url: str, timeout: float = 5.0, max_idle: int = 8) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "Host": parts.netloc}  # fmt: skip
        self._tls = ssl.create_default_context() if self._https else None
        self._idle: list[http.client.HTTPConnection] = []
        self._max_idle = max_idle
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _new(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _send(self, body: bytes, *, network: str) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            conn, reused = (self._idle.pop(), True) if self._idle else (None, False)
        for attempt in (0, 1):
            if conn is None:
                conn, reused = self._new(), False
            try:
                conn.request("POST", self._target, body=body, headers=self._headers)
                return conn, reused
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                if not reused or attempt:
                    raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def begin(self, *, network: str, transaction: str) -> _JsonRpcRead:
        body = json.dumps([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [transaction]},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_getTransactionByHash", "params": [transaction]},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
        ]).encode()  # fmt: skip
        conn, reused = self._send(body, network=network)
        return _JsonRpcRead(self, network, transaction, body, conn, reused)

    def observe(self, *, network: str, transaction: str) -> TxObservation:
        return self.begin(network=network, transaction=transaction).finish()


class _JsonRpcRead:
    def __init__(self, source: JsonRpcSource, network: str, transaction: str, body: bytes,
                 conn: http.client.HTTPConnection, reused: bool) -> None:  # fmt: skip
        self._source, self.network, self.transaction, self._body = source, network, transaction, body
        self._conn: http.client.HTTPConnection | None = conn
        self._reused = reused

    def abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def finish(self) -> TxObservation:
        network = self.network
        conn, self._conn = self._conn, None
        if conn is None:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: this read was already finished or dropped")
        try:
            try:
                response = conn.getresponse()
            except _RETRYABLE:
                if not self._reused:
                    raise
                conn.close()  # the node had closed the kept-alive connection: once more on a new one
                conn, _ = self._source._send(self._body, network=network)
                response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
        if response.will_close:
            conn.close()
        else:
            self._source._release(conn)
        if response.status != 200:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: HTTP {response.status}")
        try:
            answers = json.loads(raw)
        except ValueError as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: the answer is not JSON") from exc
        return _decode(answers, network=network, transaction=self.transaction)


def _decode(answers: Any, *, network: str, transaction: str) -> TxObservation:
    if not isinstance(answers, list):
        raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: the node does not answer batch requests")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    results: dict[int, Any] = {}
    for key in (1, 2, 3):
        answer = by_id.get(key)
        if answer is None or "error" in answer:
            error = answer.get("error") if answer else "no answer"
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {error}")
        results[key] = answer.get("result")
    try:
        return observation_from(
            network=network, transaction=transaction, head=results[3], receipt=results[1], tx=results[2]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: unexpected answer: {exc}") from exc


class Web3Source:
    """An in-process web3 (the embedded chain). py-evm is not thread-safe: reads hold the chain's lock."""

    def __init__(self, *, w3: Any, lock: threading.RLock | None = None) -> None:
        self.w3 = w3
        self._lock = lock or threading.RLock()

    def observe(self, *, network: str, transaction: str) -> TxObservation:
        from web3.exceptions import TransactionNotFound

        try:
            with self._lock:
                head = self.w3.eth.block_number
                try:
                    receipt: Mapping[str, Any] | None = self.w3.eth.get_transaction_receipt(transaction)
                except TransactionNotFound:
                    receipt = None
                tx: Mapping[str, Any] | None = None
                if receipt is None:
                    try:
                        tx = self.w3.eth.get_transaction(transaction)
                    except TransactionNotFound:
                        tx = None
        except (OSError, ValueError) as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
        return observation_from(network=network, transaction=transaction, head=head, receipt=receipt, tx=tx)
