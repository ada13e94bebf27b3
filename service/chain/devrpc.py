"""A JSON-RPC face for the embedded chain, so other processes (``omatrust merchant``/``facilitator``/``pay``/``demo``)
can pay and settle on it: ``POST /v1/chain/rpc`` on the service when its chain is the embedded one.

Only what x402 payers and facilitators need is allowed (reads, ``eth_call``, ``eth_sendRawTransaction``, receipts):
no unlocked-account methods (``eth_sendTransaction``, ``eth_sign``), no tester controls. Results come from web3's
eth-tester provider as Python values; :func:`to_wire` turns them back into JSON-RPC encoding (quantities as hex,
bytes as 0x-hex, camelCase keys).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from service.chain.rpc import maybe_locked

ALLOWED_METHODS = frozenset({
    "eth_chainId", "net_version", "web3_clientVersion", "eth_blockNumber", "eth_gasPrice", "eth_maxPriorityFeePerGas",
    "eth_feeHistory", "eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getTransactionCount", "eth_call",
    "eth_estimateGas", "eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getTransactionByHash",
    "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getLogs",
})  # fmt: skip
_SNAKE = re.compile(r"_([a-z])")


def is_embedded(w3: Web3) -> bool:
    return isinstance(w3.provider, EthereumTesterProvider)


def to_wire(value: Any) -> Any:
    """Python result → JSON-RPC encoding (ints → hex quantities, bytes → 0x-hex, snake_case keys → camelCase)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {_SNAKE.sub(lambda m: m.group(1).upper(), str(k)): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def handle(*, w3: Web3, request: Any, lock: threading.RLock | None = None) -> dict[str, Any]:
    """Answer one JSON-RPC request object (errors are JSON-RPC errors, never exceptions)."""
    rid = request.get("id") if isinstance(request, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32600, "message": "invalid request"}}
    method, params = request["method"], request.get("params") or []
    if method not in ALLOWED_METHODS:
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"method {method} not allowed"}}
    try:
        with maybe_locked(lock):
            result = w3.manager.request_blocking(method, params)
    except Exception as exc:  # a revert or a bad parameter: report it the way a node does
        data = getattr(exc, "data", None)
        error: dict[str, Any] = {"code": -32000, "message": str(exc)[:500]}
        if isinstance(data, str):
            error["data"] = data
        return {"jsonrpc": "2.0", "id": rid, "error": error}
    return {"jsonrpc": "2.0", "id": rid, "result": to_wire(result)}
