"""How many confirmations make a published attestation ``confirmed`` (``OMATRUST_CONFIRMATIONS`` overrides).

A transaction in block ``b`` has ``head − b + 1`` confirmations. Defaults by chain id:

* dev chains (anvil/hardhat 31337, ganache 1337, the embedded chain 131277322940537): **1** — they do not reorg
  unless told to;
* OP-stack chains (Base 8453 / Base Sepolia 84532, OP Mainnet 10 / OP Sepolia 11155420, OMAChain testnet 66238):
  **10** blocks (≈ 20 s at 2 s blocks) — the sequencer's unsafe head can be reorged until its batch is on L1,
  which in practice happens within a few blocks; ten leaves a wide margin while keeping reviews quick;
* Ethereum mainnet 1 / Sepolia 11155111: **64** (two epochs: finality);
* any other chain: **12**.
"""

from __future__ import annotations

DEV_CHAINS = frozenset({31337, 1337, 131277322940537})
OP_STACK = frozenset({8453, 84532, 10, 11155420, 66238})
ETHEREUM = frozenset({1, 11155111})
DEV, OP, L1, OTHER = 1, 10, 64, 12


def default_confirmations(*, chain_id: int) -> int:
    if chain_id in DEV_CHAINS:
        return DEV
    if chain_id in OP_STACK:
        return OP
    if chain_id in ETHEREUM:
        return L1
    return OTHER


def confirmations_for(*, chain_id: int, configured: int | None) -> int:
    """``configured`` when set (at least 1), else the default for ``chain_id``."""
    return max(1, configured) if configured is not None else default_confirmations(chain_id=chain_id)
