"""An in-process EVM (eth-tester + py-evm) with EAS at Base's predeploy addresses: the zero-setup default chain.

* SchemaRegistry at ``0x4200…0020`` and EAS at ``0x4200…0021`` are in the **genesis state** (code + the storage
  their constructors wrote), produced once per process by ``service.chain.deploy.predeploys`` (see there why the
  artifact's ``deployedBytecode`` cannot be used: zeroed immutables). EAS's EIP-712 domain is then
  ``{"EAS", "1.4.0", <this chain id>, 0x4200…0021}``, checked at startup.
* The User Review schema is registered by the relayer in block 1.
* Accounts come from the usual dev mnemonic (``test … junk``, ``m/44'/60'/0'/0/i``), so account 0 is the same
  relayer as on a fresh anvil; pass ``relayer_key`` to fund and use another key.
* **Persistent** when given a ``path``: every block, receipt and state trie node goes to one SQLite file
  (``service.chain.chainfile``), written in one transaction per mined block. Starting again on the same file resumes
  the same chain (same genesis hash, blocks, EAS nonces, attestation UIDs); contracts and schema are placed only when
  the file is created. ``path=":memory:"`` keeps the old ephemeral chain (tests).
* **On first creation** (a new file, or every ``:memory:`` start) the ``on_first_creation`` callables run after the
  schema is registered and before the file is marked ready — the hook point for one-time setup such as a test
  token (``service.chain.token``). A file whose first start was interrupted before it was marked ready is wiped
  and created again (nothing can refer to it: it never served).
* py-evm is not thread-safe: every user of ``w3`` must hold ``lock`` (``EasClient`` does when given it).
* Startup (measured on the dev machine): ≈ 70 ms per chain, plus ≈ 0.2 s once per process for building the
  contracts in the scratch chain; importing web3 + py-evm costs another ≈ 1–2 s on first use.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic, get_default_genesis_params
from eth_utils.address import to_canonical_address
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from service.chain import deploy, token
from service.chain.chainfile import SqliteKeyValue
from service.chain.codec import ZERO_ADDRESS, schema_uid
from service.chain.eas_relayer import EasClient
from service.domain import USER_REVIEW_SCHEMA, USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected, ChainUnavailable

EAS_ADDRESS = "0x4200000000000000000000000000000000000021"
SCHEMA_REGISTRY_ADDRESS = "0x4200000000000000000000000000000000000020"
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"
DEV_BALANCE_WEI = 10**6 * 10**18
MEMORY = ":memory:"
CHAIN_FILE_FORMAT = "1"


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
    path: str = MEMORY
    created: bool = True  # False when an existing chain file was resumed
    writable: bool = True  # False: another process writes this chain file (this one only reads it)
    _store: SqliteKeyValue | None = None

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

    @property
    def genesis_hash(self) -> str:
        with self.lock:
            return "0x" + bytes(self.w3.eth.get_block(0)["hash"]).hex()

    def close(self) -> None:
        """Flush and close the chain file (no-op in memory). The chain must not be used afterwards."""
        with self.lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class _Backend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend with its chain database in ``store`` (flushed after every mined block)."""

    def __init__(self, *, store: SqliteKeyValue, fresh: bool, genesis: dict[bytes, dict[str, Any]]) -> None:
        self._store, self._fresh = store, fresh
        super().__init__(genesis_state=genesis, mnemonic=DEV_MNEMONIC, hd_path=DEV_HD_PATH)

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        super().reset_to_genesis(*args, **kwargs)  # an in-memory chain: gives the account keys and the chain class
        chain_class = type(self.chain)  # type: ignore[has-type]
        db = AtomicDB(self._store)
        if self._fresh:
            genesis_state = args[1] if len(args) > 1 else kwargs.get("genesis_state")
            self.chain = chain_class.from_genesis(db, genesis_params(), genesis_state)
        else:
            self.chain = chain_class(db)  # resumes at the stored canonical head
        self._store.flush()

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        hashes = super().mine_blocks(num_blocks, coinbase) if coinbase is not None else super().mine_blocks(num_blocks)
        self._store.flush()
        return hashes

    def revert_to_snapshot(self, snapshot: Any) -> None:
        super().revert_to_snapshot(snapshot)
        self._store.flush()


def genesis_params() -> dict[str, Any]:
    """eth-tester's genesis parameters with 32 random bytes of ``extraData``: every chain created gets its own
    genesis hash (its identity), even two created in the same second."""
    params: dict[str, Any] = get_default_genesis_params(overrides={"extra_data": os.urandom(32)})
    return params


@functools.cache
def _dev_keys(count: int) -> tuple[bytes, ...]:
    keys = get_account_keys_from_mnemonic(DEV_MNEMONIC, quantity=count, hd_path=DEV_HD_PATH)
    return tuple(k.to_bytes() for k in keys)


def _genesis(keys: Sequence[bytes], relayer: LocalAccount) -> dict[bytes, dict[str, Any]]:
    contracts = deploy.predeploys(eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS)

    def funded() -> dict[str, Any]:
        return {"balance": DEV_BALANCE_WEI, "nonce": 0, "code": b"", "storage": {}}

    genesis: dict[bytes, dict[str, Any]] = {to_canonical_address(Account.from_key(k).address): funded() for k in keys}
    genesis[to_canonical_address(relayer.address)] = funded()
    for account in (token.DEPLOYER, token.OWNER):  # the test USDC's keys: gas money without touching relayer nonces
        genesis[to_canonical_address(account.address)] = funded()
    for contract in contracts:
        genesis[to_canonical_address(contract.address)] = {
            "balance": 0,
            "nonce": 1,
            "code": contract.code,
            "storage": dict(contract.storage),
        }
    return genesis


def _fund(w3: Web3, *, payer: str, account: str) -> None:
    """Give ``account`` dev funds from ``payer`` when it has none (a new relayer key on an existing chain file)."""
    if w3.eth.get_balance(account) == 0:  # type: ignore[arg-type]
        w3.eth.send_transaction({"from": payer, "to": account, "value": DEV_BALANCE_WEI // 10})  # type: ignore[typeddict-item]


def start_embedded_chain(
    *,
    path: str | Path = MEMORY,
    relayer_key: bytes | str | None = None,
    dev_accounts: int = 4,
    on_first_creation: Sequence[Callable[[EmbeddedChain], object]] = (),
) -> EmbeddedChain:
    """Start the embedded chain: a fresh one in memory (``path=":memory:"``), or the chain kept in the file at
    ``path`` (created with EAS + SchemaRegistry at the Base predeploys and the schema registered when new).

    ``relayer_key`` (optional) is funded and used as the relayer; otherwise dev account 0 is. ``dev_accounts`` extra
    funded accounts follow (dev mnemonic accounts 1…n). ``on_first_creation`` run once, when the chain is created.

    Raises:
        ChainRejected: the placed EAS has an unexpected domain separator or the schema UID differs
            (both would mean the artifacts changed); or the file is a chain of another format.
        sqlite3.Error: the chain file cannot be opened or written.
    """
    started = time.perf_counter()
    keys = _dev_keys(dev_accounts + 1)
    relayer = Account.from_key(relayer_key if relayer_key is not None else keys[0])
    devs = tuple(Account.from_key(k) for k in keys[1:])
    genesis = _genesis(keys, relayer)
    if str(path) == MEMORY:
        # The mnemonic makes eth-tester's own account list (the default `from` of eth_call) the funded dev accounts.
        backend = PyEVMBackend(
            genesis_parameters=genesis_params(), genesis_state=genesis, mnemonic=DEV_MNEMONIC, hd_path=DEV_HD_PATH
        )
        chain = _ready(backend, relayer=relayer, devs=devs, path=MEMORY, store=None, fresh=True)
        _first_creation(chain, store=None, hooks=on_first_creation)
    else:
        store = SqliteKeyValue(path=Path(path))
        try:
            chain = _open_file(store, path=str(path), genesis=genesis, relayer=relayer, devs=devs)
            if chain.created:
                _first_creation(chain, store=store, hooks=on_first_creation)
            elif store.writable:
                for account in (relayer, *devs):
                    _fund(chain.w3, payer=Account.from_key(keys[0]).address, account=account.address)
        except BaseException:
            store.discard()
            store.close()  # releases the file for the next start (an unfinished file is created again)
            raise
    chain.startup_seconds = time.perf_counter() - started
    return chain


def _open_file(
    store: SqliteKeyValue,
    *,
    path: str,
    genesis: dict[bytes, dict[str, Any]],
    relayer: LocalAccount,
    devs: tuple[LocalAccount, ...],
) -> EmbeddedChain:
    if not store.writable and store.get_meta("ready") is None:
        raise ChainUnavailable(Reason.RPC_FAILED, f"{path} is being created by another process")
    if store.get_meta("ready") is None and not store.is_empty():
        store.wipe()  # an interrupted first start: never served, nothing refers to it
    fresh = store.get_meta("ready") is None
    if not fresh and store.get_meta("format") != CHAIN_FILE_FORMAT:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, f"{path}: chain file format {store.get_meta('format')!r}")
    backend = _Backend(store=store, fresh=fresh, genesis=genesis)
    return _ready(backend, relayer=relayer, devs=devs, path=path, store=store, fresh=fresh)


def _ready(
    backend: PyEVMBackend,
    *,
    relayer: LocalAccount,
    devs: tuple[LocalAccount, ...],
    path: str,
    store: SqliteKeyValue | None,
    fresh: bool,
) -> EmbeddedChain:
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    deploy.check_eas(w3=w3, eas_address=EAS_ADDRESS)
    if schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, False) != USER_REVIEW_SCHEMA_UID:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, "User Review schema UID mismatch")
    return EmbeddedChain(
        w3=w3,
        relayer=relayer,
        dev_accounts=devs,
        ephemeral=store is None,
        path=path,
        created=fresh,
        writable=store is None or store.writable,
        _store=store,
    )


def _first_creation(
    chain: EmbeddedChain, *, store: SqliteKeyValue | None, hooks: Sequence[Callable[[EmbeddedChain], object]]
) -> None:
    """Register the schema, run the one-time hooks, then mark the file ready (in this order: see the module doc)."""
    deploy.register_schema(w3=chain.w3, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=chain.relayer)
    for hook in hooks:  # one-time setup on a new chain (e.g. the test token)
        hook(chain)
    if store is not None:
        store.set_meta("format", CHAIN_FILE_FORMAT)
        store.set_meta("created_at", str(int(time.time())))
        store.set_meta("ready", "1")


def chain_path_for(*, database_url: str, configured: str = "") -> str:
    """Where the embedded chain lives: ``configured`` when set (``:memory:`` = ephemeral); else beside a SQLite
    database file (``./omatrust.db`` → ``./omatrust.chain``); an in-memory SQLite database gets an in-memory chain;
    any other database (PostgreSQL) → ``./omatrust.chain`` in the working directory."""
    if configured:
        return configured
    if database_url.startswith("sqlite"):
        file = database_url.split(":///", 1)[1] if ":///" in database_url else ""
        file = file.split("?", 1)[0]
        if not file or file == MEMORY or file.startswith("file::memory:"):
            return MEMORY
        return str(Path(file).with_suffix(".chain"))
    return "omatrust.chain"
