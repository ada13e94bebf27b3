"""Real x402 settlements for the payment tests: the PyPI x402 SDK client signs an EIP-3009 authorization and the SDK
facilitator (service.x402.facilitator) settles it with ``transferWithAuthorization`` on Circle's FiatTokenV2_2 (the
test USDC of service.chain.token). Nothing here fakes a payment."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from x402 import x402ClientSync
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.schemas import PaymentRequired, PaymentRequirements

from service.chain.token import TOKEN_ADDRESS, TOKEN_NAME, TOKEN_VERSION, token_contract
from service.x402.facilitator import _run, build_facilitator


@dataclass
class Settler:
    """Settles payments on one chain through the SDK facilitator; ``gas_key`` pays the settlement gas."""

    w3: Web3
    gas_key: str
    lock: threading.RLock | None = None

    def __post_init__(self) -> None:
        self.facilitator = build_facilitator(w3=self.w3, private_key=self.gas_key, lock=self.lock)
        self.network = f"eip155:{self._locked(lambda: int(self.w3.eth.chain_id))}"

    def _locked(self, fn: Any) -> Any:
        if self.lock is None:
            return fn()
        with self.lock:
            return fn()

    def pay(self, *, payer: LocalAccount, pay_to: str, amount: int, asset: str = TOKEN_ADDRESS) -> str:
        """Settle ``amount`` atomic units of ``asset`` from ``payer`` to ``pay_to``; returns the 0x tx hash.

        Raises AssertionError when the facilitator did not settle."""
        requirement = {
            "scheme": "exact", "network": self.network, "asset": Web3.to_checksum_address(asset),
            "amount": str(amount), "payTo": Web3.to_checksum_address(pay_to), "maxTimeoutSeconds": 300,
            "extra": {"name": TOKEN_NAME, "version": TOKEN_VERSION},
        }  # fmt: skip
        required = PaymentRequired.model_validate(
            {"x402Version": 2, "resource": {"url": "https://merchant.test/weather"}, "accepts": [requirement]}
        )
        sdk = x402ClientSync()
        register_exact_evm_client(sdk, payer, networks=[self.network])
        sdk.set_spend_controls({"allowed_assets": [{"network": self.network, "asset": requirement["asset"],
                                                    "max_amount_per_payment": str(amount)}]})  # fmt: skip
        payload = sdk.create_payment_payload(required, resource=required.resource)
        result = _run(self.facilitator.settle, payload, PaymentRequirements.model_validate(requirement))
        assert result.success, f"facilitator did not settle: {result}"
        tx = str(result.transaction)
        return tx if tx.startswith("0x") else "0x" + tx


def transfer_directly(*, w3: Web3, payer: LocalAccount, to: str, amount: int, lock: threading.RLock | None = None,
                      asset: str = TOKEN_ADDRESS) -> str:  # fmt: skip
    """A plain ERC-20 ``transfer`` sent by the payer itself (needs gas money): another real way to pay."""

    def go() -> str:
        token = token_contract(w3=w3, address=asset)
        tx = token.functions.transfer(Web3.to_checksum_address(to), amount).build_transaction({
            "from": payer.address, "nonce": w3.eth.get_transaction_count(payer.address, "pending"), "gas": 200_000,
            "chainId": w3.eth.chain_id, "maxFeePerGas": 2 * 10**9 + w3.eth.get_block("latest")["baseFeePerGas"],
            "maxPriorityFeePerGas": 10**9,
        })  # fmt: skip
        tx_hash = w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")

    if lock is None:
        return go()
    with lock:
        return go()


def new_payer() -> LocalAccount:
    return Account.create()
