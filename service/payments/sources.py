"""Where an observation comes from: a JSON-RPC node over HTTP (one batched POST per transaction, which can be sent
ahead and read later: ``PipelinedSource``), or an in-process web3 (the embedded chain, which has no HTTP
endpoint)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from service.domain import Reason, TxLog, TxObservation
from service.errors import ChainUnavailable
from service.http11 import BadResponse, ConnectionPool, Http11Connection


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


def _lower_hex(value: Any) -> str:
    return value.lower() if isinstance(value, str) else _hex(value).lower()  # JSON-RPC gives str: no conversion


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
            topics=tuple(_lower_hex(t) for t in log.get("topics", ())),
            data=_lower_hex(log.get("data", "0x")),
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


class PipelinedSource(Protocol):
    """A source that can send a read now and take its answer later, so the round trip overlaps other work."""

    def begin(self, *, network: str, transaction: str) -> PendingRead:
        """Send the read for ``transaction``.

        Raises:
            ChainUnavailable(RPC_FAILED): the request could not be sent.
        """
        ...


_FAILED = (OSError, BadResponse)  # OSError: connect, TLS, write, read, timeout


class JsonRpcSource:
    """A JSON-RPC node over HTTP(S). One batch request per observation: ``eth_getTransactionReceipt`` and
    ``eth_blockNumber`` travel together, so checking a mined transaction costs one round trip; only when there is
    no receipt is ``eth_getTransactionByHash`` asked next, to tell pending from unknown (asking it in every batch
    would make every settled check wait for a look-up nodes answer slowly — on anvil it costs ~4× the rest of the
    batch, on the wire and in the node's CPU).
    HTTP/1.1 by ``service.http11`` (a request in one write; kept-alive connections reused across reads, a read
    whose reused connection the node had closed sent once more on a new one). ``begin`` sends the batch and returns
    without waiting, so the round trip can overlap other work; ``observe`` is ``begin`` + ``finish``. Thread-safe: a
    pending read owns its connection."""

    def __init__(self, *, url: str, timeout: float = 5.0, max_idle: int = 8, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the context for an https node (default: the system's trust store).

        Raises:
            ValueError: ``url`` is not http(s).
        """
        try:
            self._pool = ConnectionPool(url=url, timeout=timeout, max_idle=max_idle, tls=tls)
        except ValueError:
            raise ValueError(f"not an http(s) URL: {url!r}") from None
        self.url = url
        self.timeout = timeout

    def close(self) -> None:
        self._pool.close()

    def _exchange(self, calls: list[tuple[str, list[Any]]], *, network: str) -> _Exchange:
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                           for i, (method, params) in enumerate(calls, 1)]).encode()  # fmt: skip
        request = self._pool.request(body)
        try:
            conn, reused = self._pool.send(request)
        except OSError as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
        return _Exchange(self._pool, network, request, len(calls), conn, reused)

    def begin(self, *, network: str, transaction: str) -> _JsonRpcRead:
        calls = [("eth_getTransactionReceipt", [transaction]), ("eth_blockNumber", [])]
        return _JsonRpcRead(self, transaction, self._exchange(calls, network=network))

    def observe(self, *, network: str, transaction: str) -> TxObservation:
        return self.begin(network=network, transaction=transaction).finish()


class _Exchange:
    """One batch request sent on ``conn``; ``results`` reads its answer (once)."""

    def __init__(self, pool: ConnectionPool, network: str, request: bytes, count: int, conn: Http11Connection,
                 reused: bool) -> None:  # fmt: skip
        self._pool, self.network, self._request, self._count = pool, network, request, count
        self._conn: Http11Connection | None = conn
        self._reused = reused

    def abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def results(self) -> list[Any]:
        """The ``result`` of each call, in the order asked.

        Raises:
            ChainUnavailable(RPC_FAILED): the node could not be read, or answered with an error for a call.
        """
        network = self.network
        conn, self._conn = self._conn, None
        if conn is None:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: this read was already finished or dropped")
        try:
            response = self._pool.receive(conn, reused=self._reused, request=self._request)
        except _FAILED as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
        if response.status != 200:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: HTTP {response.status}")
        try:
            answers = json.loads(response.body)
        except ValueError as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: the answer is not JSON") from exc
        return _results(answers, count=self._count, network=network)


class _JsonRpcRead:
    def __init__(self, source: JsonRpcSource, transaction: str, exchange: _Exchange) -> None:
        self._source, self.transaction, self._exchange = source, transaction, exchange
        self.network = exchange.network

    def abandon(self) -> None:
        self._exchange.abandon()

    def finish(self) -> TxObservation:
        network, transaction = self.network, self.transaction
        receipt, head = self._exchange.results()
        tx = None
        if receipt is None:  # pending or unknown: only the transaction itself tells (one more round trip)
            [tx] = self._source._exchange([("eth_getTransactionByHash", [transaction])], network=network).results()
        try:
            return observation_from(network=network, transaction=transaction, head=head, receipt=receipt, tx=tx)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: unexpected answer: {exc}") from exc


def _results(answers: Any, *, count: int, network: str) -> list[Any]:
    if not isinstance(answers, list):
        raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: the node does not answer batch requests")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    results = []
    for key in range(1, count + 1):
        answer = by_id.get(key)
        if answer is None or "error" in answer:
            error = answer.get("error") if answer else "no answer"
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {error}")
        results.append(answer.get("result"))
    return results


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
