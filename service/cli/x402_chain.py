"""Chain plumbing shared by the x402 commands (``merchant``, ``facilitator``, ``demo``): which JSON-RPC URL to use,
the test token on it, the facilitator's gas key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from web3 import Web3

DEFAULT_API = "http://127.0.0.1:8402"


def rpc_url_for(*, explicit: str | None, api: str) -> str:
    """``explicit`` → ``OMATRUST_RPC_URL`` → the running service's embedded chain (``<api>/v1/chain/rpc``)."""
    from service.wiring import load_settings

    return explicit or load_settings().rpc_url or api.rstrip("/") + "/v1/chain/rpc"


@dataclass(frozen=True)
class Asset:
    network: str
    address: str
    name: str
    version: str
    decimals: int


def asset_on(*, w3: Web3, address: str | None) -> Asset:
    """The EIP-3009 asset to sell for: ``address`` (its EIP-712 name/version read from the chain) or the test USDC.

    Raises:
        SystemExit: no address given and no test token on this chain.
        ChainUnavailable: RPC failure.
    """
    from service.chain import token

    if address is None:
        found = token.find_token(w3=w3)
        if found is None:
            raise SystemExit("no test USDC on this chain: run `omatrust chain bootstrap` (anvil) or pass --asset")
        return Asset(found.network, found.address, found.name, found.version, found.decimals)
    contract: Any = token.token_contract(w3=w3, address=address)
    return Asset(f"eip155:{int(w3.eth.chain_id)}", Web3.to_checksum_address(address),
                 str(contract.functions.name().call()), str(contract.functions.version().call()),
                 int(contract.functions.decimals().call()))  # fmt: skip


def facilitator_key() -> str:
    """``OMATRUST_FACILITATOR_KEY`` (0x hex), else the public dev facilitator key the test token setup funds."""
    from service.chain import token

    return os.environ.get("OMATRUST_FACILITATOR_KEY") or "0x" + bytes(token.FACILITATOR.key).hex()
