"""An in-process EVM (eth-tester + py-evm) with EAS at Base's predeploy addresses: the zero-setup default chain.

* SchemaRegistry at ``0x4200…0020`` and EAS at ``0x4200…0021`` are in the **genesis state** (code + the storage
  their constructors wrote), produced once per process by ``service.chain.deploy.predeploys`` (see there why the
  artifact's ``deployedBytecode`` cannot be used: zeroed immutables). EAS's EIP-712 domain is then
  ``{"EAS", "1.4.0", <this chain id>, 0x4200…0021}``, checked at startup.
* The User Review schema is registered by the relayer in block 1.
* Accounts come from the usual dev mnemonic (``test … junk``, ``m/44'/60'/0'/0/i``), so account 0 is the same
  relayer as on a fresh anvil; pass ``relayer_key`` to fund and use another key.
* State lives in memory only (``ephemeral=True``): everything is gone when the process exits.
* py-evm is not thread-safe: every user of ``w3`` must hold ``lock`` (``EasClient`` does when given it).
* Startup (measured on the dev machine): ≈ 70 ms per chain, plus ≈ 0.2 s once per process for building the
  contracts in the scratch chain; importing web3 + py-evm costs another ≈ 1–2 s on first use.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic
from eth_utils.address import to_canonical_address
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from service.chain import deploy
from service.chain.codec import ZERO_ADDRESS, schema_uid
from service.chain.eas import EasClient
from service.domain import USER_REVIEW_SCHEMA, USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected

EAS_ADDRESS = "0x4200000000000000000000000000000000000021"
SCHEMA_REGISTRY_ADDRESS = "0x4200000000000000000000000000000000000020"
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"
DEV_BALANCE_WEI = 10**6 * 10**18


@dataclass
class EmbeddedChain:
    """A running in-process chain. ``relayer`` pays gas; ``dev_accounts`` are extra funded keys (tests, demo)."""

    w3: Web3
    relayer: LocalAccount
    dev_accounts: tuple[LocalAccount, ...]
    lock: threading.RLock = field(default_factory=threading.RLock)
    eas_address: str = EAS_ADDRESS
    schema_registry_address: str = SCHEMA_REGISTRY_ADDRESS
    schema_uid: str = USER_REVIEW_SCHEMA_UID
    ephemeral: bool = True
    startup_seconds: float = 0.0

    def client(self, *, relayer: LocalAccount | None = None, **kwargs: Any) -> EasClient:
        """An ``EasClient`` bound to this chain and its lock, with explicit gas limits and no eth_call preflight
        (both would double the cost of every transaction on py-evm)."""
        return EasClient(
            w3=self.w3,
            eas_address=self.eas_address,
            relayer=relayer or self.relayer,
            lock=self.lock,
            preflight=False,
            **kwargs,
        )


@functools.cache
def _dev_keys(count: int) -> tuple[bytes, ...]:
    keys = get_account_keys_from_mnemonic(DEV_MNEMONIC, quantity=count, hd_path=DEV_HD_PATH)
    return tuple(k.to_bytes() for k in keys)


def start_embedded_chain(*, relayer_key: bytes | str | None = None, dev_accounts: int = 4) -> EmbeddedChain:
    """Start a fresh in-memory chain with EAS + SchemaRegistry at the Base predeploys and the schema registered.

    ``relayer_key`` (optional) is funded and used as the relayer; otherwise dev account 0 is. ``dev_accounts`` extra
    funded accounts follow (dev mnemonic accounts 1…n).

    Raises:
        ChainRejected: the placed EAS has an unexpected domain separator or the schema UID differs
            (both would mean the artifacts changed).
    """
    started = time.perf_counter()
    contracts = deploy.predeploys(eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS)
    keys = _dev_keys(dev_accounts + 1)
    relayer = Account.from_key(relayer_key if relayer_key is not None else keys[0])
    devs = tuple(Account.from_key(k) for k in keys[1:])

    def funded() -> dict[str, Any]:
        return {"balance": DEV_BALANCE_WEI, "nonce": 0, "code": b"", "storage": {}}

    genesis: dict[bytes, dict[str, Any]] = {to_canonical_address(Account.from_key(k).address): funded() for k in keys}
    genesis[to_canonical_address(relayer.address)] = funded()
    for contract in contracts:
        genesis[to_canonical_address(contract.address)] = {
            "balance": 0,
            "nonce": 1,
            "code": contract.code,
            "storage": dict(contract.storage),
        }
    # The mnemonic makes eth-tester's own account list (the default `from` of eth_call) the funded dev accounts.
    backend = PyEVMBackend(genesis_state=genesis, mnemonic=DEV_MNEMONIC, hd_path=DEV_HD_PATH)
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))

    deploy.check_eas(w3=w3, eas_address=EAS_ADDRESS)
    if schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, False) != USER_REVIEW_SCHEMA_UID:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, "User Review schema UID mismatch")
    deploy.register_schema(w3=w3, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=relayer)
    return EmbeddedChain(
        w3=w3,
        relayer=relayer,
        dev_accounts=devs,
        startup_seconds=time.perf_counter() - started,
    )
