"""JSON-RPC plumbing: building a client, telling "could not reach the node" from "the chain said no".

* Transport failures (connection refused, timeouts, HTTP errors, a node that is syncing) → ``ChainUnavailable``
  (retryable, ``CouldNotCheck``).
* A revert → ``ChainRejected`` with a ``Reason`` picked from the EAS custom-error selector (not retryable).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TooManyRequests,
    Web3RPCError,
)
from web3.types import RPCEndpoint

from service.chain import abi
from service.domain import Reason
from service.errors import ChainRejected, ChainUnavailable
from service.lookup_limits import LookupLimiter

# EAS / SchemaRegistry custom errors that map to a specific reason; every other revert is TX_REVERTED.
_REASON_BY_ERROR = {
    "DeadlineExpired": Reason.DELEGATION_EXPIRED,
    "InvalidSignature": Reason.SIGNATURE_INVALID,
    "InvalidNonce": Reason.DELEGATION_NONCE,
    "InvalidSchema": Reason.SCHEMA_MISMATCH,
    "WrongSchema": Reason.SCHEMA_MISMATCH,
}
_SELECTORS: dict[bytes, str] = {}
log = logging.getLogger("omatrust.rpc")
_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)


def connect(*, rpc_url: str, timeout: float = 10.0, limiter: LookupLimiter | None = None) -> Web3:
    """A Web3 over HTTP with a request timeout and **no** built-in retries: callers retry with their own backoff,
    so a dead node fails fast as ``ChainUnavailable`` instead of stalling in web3's retry loop. With ``limiter``,
    calls in flight to the node are capped (``LookupSaturated`` past the cap)."""
    # eth_chainId is cached: web3's request validation asks for it before every eth_call, which tripled the
    # round-trips of each getNonce (a node's chain id does not change; start-up checks the chain's identity).
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None,
        cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")},
    )  # fmt: skip
    if limiter is not None:
        unlimited = provider.make_request
        host = urlsplit(rpc_url).hostname or "rpc"

        def make_request(method: Any, params: Any) -> Any:
            with limiter.slot(host=host, what="JSON-RPC call"):
                return unlimited(method, params)

        provider.make_request = make_request  # type: ignore[method-assign]
    return Web3(provider)


def maybe_locked(lock: threading.RLock | None) -> contextlib.AbstractContextManager[Any]:
    return lock if lock is not None else contextlib.nullcontext()


def error_name(data: bytes) -> str | None:
    """Custom-error name for revert ``data`` (first 4 bytes), from the EAS and SchemaRegistry ABIs."""
    if not _SELECTORS:
        _SELECTORS.update(abi.error_selectors("SchemaRegistry"))
        _SELECTORS.update(abi.error_selectors("EAS"))
    return _SELECTORS.get(bytes(data[:4]))


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes carried by a web3 / eth-tester call error, when there are any."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        with contextlib.suppress(ValueError):
            return bytes.fromhex(data[2:])
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    # eth-tester's TransactionFailed only carries a message: "execution reverted: b'\x8b\xaaW\x9f'".
    match = _TESTER_REVERT.search(str(exc.args[0]) if exc.args else "")
    if match:
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(match.group(1))
            if isinstance(value, bytes):
                return value
    return None


def is_revert(exc: BaseException) -> bool:
    """True for an EVM revert raised by a call (web3 or eth-tester), as opposed to a transport failure."""
    if isinstance(exc, ContractLogicError):
        return True
    return type(exc).__name__ == "TransactionFailed"  # eth_tester.exceptions, not imported: optional dependency


def classify_revert(data: bytes | None) -> tuple[Reason, str]:
    """(reason, detail) for revert bytes. Unknown or empty data → TX_REVERTED."""
    if not data:
        return Reason.TX_REVERTED, "reverted without data"
    name = error_name(data)
    if name is None:
        return Reason.TX_REVERTED, f"reverted with 0x{bytes(data[:4]).hex()}"
    return _REASON_BY_ERROR.get(name, Reason.TX_REVERTED), name


def rejected_from(exc: BaseException) -> ChainRejected:
    reason, detail = classify_revert(revert_data(exc))
    return ChainRejected(reason, detail)


_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # requests' ConnectionError / Timeout subclass it; so do socket errors
    ProviderConnectionError,
    TimeExhausted,
    TooManyRequests,
)


@contextlib.contextmanager
def rpc_errors(what: str) -> Iterator[None]:
    """Map transport failures inside the block to ``ChainUnavailable`` and call reverts to ``ChainRejected``.

    Raises:
        ChainUnavailable(RPC_FAILED): the node could not be reached or answered with an error.
        ChainRejected: a call reverted (reason from the custom-error selector).
    """
    try:
        yield
    except (ChainUnavailable, ChainRejected):
        raise
    except _TRANSPORT_ERRORS as exc:
        # The exception text names the node URL (API keys often sit in its path): it goes to the log only.
        log.warning("RPC %s failed: %r", what, exc)
        raise ChainUnavailable(Reason.RPC_FAILED, f"{what}: the chain node could not be reached") from exc
    except Exception as exc:
        if is_revert(exc):
            raise rejected_from(exc) from exc
        if isinstance(exc, Web3RPCError):
            log.warning("RPC %s answered an error: %r", what, exc)
            raise ChainUnavailable(Reason.RPC_FAILED, f"{what}: the chain node answered an error") from exc
        raise
