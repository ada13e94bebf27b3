"""Where an observation comes from: a JSON-RPC node over HTTP (one batched POST per transaction), or an in-process
web3 (the embedded chain, which has no HTTP endpoint)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

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


class JsonRpcSource:
    """A JSON-RPC node over HTTP. One batch request per observation: ``eth_getTransactionReceipt``,
    ``eth_getTransactionByHash`` (to tell pending from unknown) and ``eth_blockNumber`` travel together, so a check
    costs one round trip. The connection is kept alive across checks. Thread-safe (httpx.Client is)."""

    def __init__(self, *, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def observe(self, *, network: str, transaction: str) -> TxObservation:
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [transaction]},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_getTransactionByHash", "params": [transaction]},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
        ]
        try:
            response = self._client.post(self.url, json=batch)
            response.raise_for_status()
            answers = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(Reason.RPC_FAILED, f"{network}: {type(exc).__name__}: {exc}") from exc
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
