"""Which chain an attestation lives on: chain id alone is not enough (every anvil is 31337, every embedded chain
131277322940537), so the genesis block hash and the EAS address complete it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from web3 import Web3

from service.chain.rpc import maybe_locked, rpc_errors


@dataclass(frozen=True, slots=True)
class ChainIdentity:
    chain_id: int
    genesis_hash: str  # 0x + 64 hex, lower case
    eas_address: str  # checksummed

    def describe(self) -> str:
        return f"chain id {self.chain_id}, genesis {self.genesis_hash}, EAS {self.eas_address}"


def read_identity(*, w3: Web3, eas_address: str, lock: threading.RLock | None = None) -> ChainIdentity:
    """Read chain id and genesis hash from the node. Raises ChainUnavailable."""
    with maybe_locked(lock), rpc_errors("chain identity"):
        chain_id = int(w3.eth.chain_id)
        genesis = "0x" + bytes(w3.eth.get_block(0)["hash"]).hex()
    return ChainIdentity(
        chain_id=chain_id, genesis_hash=genesis.lower(), eas_address=Web3.to_checksum_address(eas_address)
    )
