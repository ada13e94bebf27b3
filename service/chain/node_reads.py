"""``NodeReads``: the reads every chain client shares — head, canonical block hashes, logs — under the client's lock
(the embedded chain needs one) with transport and revert errors mapped (see ``service.chain.rpc.rpc_errors``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound

from service.chain.rpc import maybe_locked, rpc_errors


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class NodeReads:
    """Mixed into the chain clients; a subclass sets ``w3`` and ``_lock`` in its constructor."""

    w3: Web3
    _lock: threading.RLock | None

    @contextlib.contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Hold the chain lock (if any) and map errors (see ``rpc_errors``)."""
        with maybe_locked(self._lock), rpc_errors(what):
            yield

    def block_number(self) -> int:
        """Latest block number. Raises ChainUnavailable."""
        with self._rpc("eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def block_hash(self, *, number: int) -> str | None:
        """Hash of the canonical block at ``number`` (None beyond the head). Raises ChainUnavailable."""
        with self._rpc("eth_getBlockByNumber"):
            try:
                block = self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return _hex(block["hash"])

    def fetch_logs(
        self, *, address: str, topics: list[Any], from_block: int, to_block: int, chunk_blocks: int | None = None
    ) -> Iterator[Any]:
        """``eth_getLogs`` of ``address`` / ``topics`` in [from_block, to_block], in ranges of ``chunk_blocks``
        (None: one request), yielded as they arrive.

        Raises:
            ChainUnavailable: RPC failure.
        """
        if chunk_blocks is None:
            with self._rpc("eth_getLogs"):
                logs = self._get_logs(address=address, topics=topics, from_block=from_block, to_block=to_block)
            yield from logs
            return
        start = max(0, from_block)
        while start <= to_block:
            end = min(to_block, start + chunk_blocks - 1)
            with self._rpc("eth_getLogs"):
                logs = self._get_logs(address=address, topics=topics, from_block=start, to_block=end)
            yield from logs
            start = end + 1

    def _get_logs(self, *, address: str, topics: list[Any], from_block: int, to_block: int) -> list[Any]:
        query = {"address": address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}
        return list(self.w3.eth.get_logs(query))  # type: ignore[arg-type]
