"""A local x402 facilitator: the PyPI SDK's ``x402Facilitator`` with the exact EVM scheme, settling on one chain.

Nothing of our own making verifies or settles a payment: ``register_exact_evm_facilitator`` does (EIP-3009
``transferWithAuthorization`` sent to the asset, gas paid by the facilitator's key). Any EIP-3009 asset works whose
EIP-712 ``name``/``version`` the payment requirements carry in ``extra``. What this module adds:

* :class:`ChainSigner` — the SDK's ``FacilitatorWeb3Signer`` on a ``Web3`` we already hold (the embedded chain has
  no URL) and serialized by the chain's lock (py-evm is not thread-safe);
* :func:`facilitator_app` — the standard facilitator HTTP API (``POST /verify``, ``POST /settle``,
  ``GET /supported``) in front of it, as the SDK's ``HTTPFacilitatorClient`` and the TS ``@x402/core`` client call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from eth_account import Account
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from web3 import Web3
from x402 import x402Facilitator
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.schemas import PaymentPayload, PaymentRequirements


class ChainSigner(FacilitatorWeb3Signer):
    """``FacilitatorWeb3Signer`` over a given ``Web3`` (HTTP or in-process), every chain call under ``lock``."""

    def __init__(self, *, w3: Web3, private_key: str, lock: threading.RLock | None = None, **kwargs: Any) -> None:
        super().__init__(private_key=private_key, rpc_url="http://127.0.0.1:1", **kwargs)  # provider replaced below
        self._w3 = w3
        self._lock = lock if lock is not None else threading.RLock()

    def get_chain_id(self) -> int:
        with self._lock:
            return super().get_chain_id()

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        with self._lock:
            return super().read_contract(address, abi, function_name, *args)

    def verify_typed_data(self, *args: Any, **kwargs: Any) -> bool:
        with self._lock:
            return super().verify_typed_data(*args, **kwargs)

    def write_contract(self, *args: Any, **kwargs: Any) -> str:
        with self._lock:
            return super().write_contract(*args, **kwargs)

    def send_transaction(self, to: str, data: bytes) -> str:
        with self._lock:
            return super().send_transaction(to, data)

    def wait_for_transaction_receipt(self, tx_hash: str) -> Any:
        with self._lock:
            return super().wait_for_transaction_receipt(tx_hash)

    def get_balance(self, address: str, token_address: str) -> int:
        with self._lock:
            return super().get_balance(address, token_address)

    def get_code(self, address: str) -> bytes:
        with self._lock:
            return super().get_code(address)


def build_facilitator(*, w3: Web3, private_key: str, lock: threading.RLock | None = None) -> x402Facilitator:
    """The SDK facilitator with the exact EVM scheme for the chain behind ``w3`` (network ``eip155:<chainId>``);
    ``private_key`` pays the settlement gas.

    Raises:
        ValueError: ``private_key`` is not a valid key.
    """
    Account.from_key(private_key)  # fail early on a bad key
    signer = ChainSigner(w3=w3, private_key=private_key, lock=lock)
    facilitator = x402Facilitator()
    register_exact_evm_facilitator(facilitator, signer, networks=f"eip155:{signer.get_chain_id()}")
    return facilitator


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def facilitator_app(facilitator: x402Facilitator) -> FastAPI:
    """The x402 facilitator HTTP API over ``facilitator``. Bodies are ``{x402Version, paymentPayload,
    paymentRequirements}``; answers are the SDK's ``VerifyResponse`` / ``SettleResponse`` / ``SupportedResponse``
    (camelCase). A malformed body is a 400 with ``{error}``. Settlements run one at a time (nonce order)."""
    app = FastAPI(title="x402 facilitator (PyPI x402 SDK)", docs_url=None, redoc_url=None)
    settle_lock = asyncio.Lock()

    def parse(body: Any) -> tuple[PaymentPayload, PaymentRequirements]:
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return (PaymentPayload.model_validate(body.get("paymentPayload")),
                PaymentRequirements.model_validate(body.get("paymentRequirements")))  # fmt: skip

    @app.get("/supported")
    def supported() -> Any:
        return _dump(facilitator.get_supported())

    @app.post("/verify")
    async def verify(body: dict[str, Any]) -> Any:
        try:
            payload, requirements = parse(body)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": str(exc)[:500]}, status_code=400)
        return _dump(await asyncio.to_thread(_run, facilitator.verify, payload, requirements))

    @app.post("/settle")
    async def settle(body: dict[str, Any]) -> Any:
        try:
            payload, requirements = parse(body)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": str(exc)[:500]}, status_code=400)
        async with settle_lock:
            return _dump(await asyncio.to_thread(_run, facilitator.settle, payload, requirements))

    return app


def _run(method: Any, *args: Any) -> Any:
    """Run an SDK coroutine method to completion in this (worker) thread: its chain calls block."""
    with contextlib.closing(asyncio.new_event_loop()) as loop:
        return loop.run_until_complete(method(*args))
