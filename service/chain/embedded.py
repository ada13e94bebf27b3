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
* py-evm is not thread-safe: the provider of ``w3`` (:class:`ChainProvider`) runs every request under ``lock`` —
  except the reads of the **last committed block** (``eth_call`` at ``latest``, ``eth_chainId``,
  ``eth_blockNumber``, and ``eth_accounts``, which web3 asks for to fill the ``from`` of every ``eth_call``). Those
  it answers from a read view of its own (a second py-evm chain object on the committed state: a separate
  read-only connection to the chain file, or the in-memory database whose trie nodes are never rewritten), rebuilt
  after every mined block. So request threads (``getNonce``, ``getAttestation``) never wait while the publisher
  executes a block; ``python -m bench.embedded_reads`` measures it. Clients of the embedded chain therefore get no
  lock of their own (``EmbeddedChain.client``); holding ``lock`` across several calls still makes them atomic.
* Startup (measured on the dev machine): ≈ 70 ms per chain, plus ≈ 0.2 s once per process for building the
  contracts in the scratch chain; importing web3 + py-evm costs another ≈ 1–2 s on first use.
"""

from __future__ import annotations

import copy
import functools
import os
import sqlite3
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
from web3.providers.eth_tester.main import _make_request
from web3.types import RPCEndpoint, RPCResponse

from service.chain import deploy, token
from service.chain.chainfile import LookupKeyValue, SqliteKeyValue
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
        """An ``EasClient`` on this chain, with explicit gas limits and no eth_call preflight (both would double the
        cost of every transaction on py-evm). It holds no lock of its own: the provider serializes what must be
        (see the module docstring), so its reads of the committed state never wait for a block being executed."""
        return EasClient(
            w3=self.w3,
            eas_address=self.eas_address,
            relayer=relayer or self.relayer,
            lock=None,
            preflight=False,
            **kwargs,
        )

    @property
    def provider(self) -> ChainProvider:
        provider: ChainProvider = self.w3.provider  # type: ignore[assignment]
        return provider

    @property
    def genesis_hash(self) -> str:
        with self.lock:
            return "0x" + bytes(self.w3.eth.get_block(0)["hash"]).hex()

    def close(self) -> None:
        """Flush and close the chain file (no-op in memory). The chain must not be used afterwards."""
        with self.lock:
            self.provider.close()
            if self._store is not None:
                self._store.close()
                self._store = None


_LOCKFREE = frozenset({"eth_call", "eth_chainId", "eth_blockNumber", "eth_accounts"})


class _CommittedKeyValue(LookupKeyValue):
    """Read-only view of a chain file through a connection of its own: only committed (whole-block) data. Keys of
    32 bytes (trie nodes, code: named by their hash, never rewritten) are cached."""

    def __init__(self, *, path: str) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        self._conn_lock = threading.Lock()
        self._cache: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._conn_lock:
            row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        if len(key) == 32:
            if len(self._cache) >= 200_000:
                self._cache.clear()
            self._cache[bytes(key)] = value
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise TypeError("the committed-state view of the chain is read-only")

    def __delitem__(self, key: bytes) -> None:
        raise TypeError("the committed-state view of the chain is read-only")

    def close(self) -> None:
        with self._conn_lock:
            self._conn.close()


class _ReadView:
    """Answers read requests at one committed head, on a py-evm chain object of its own (nothing shared with the
    writer but an append-only store of immutable trie nodes)."""

    def __init__(self, *, backend: PyEVMBackend, db: Any, endpoints: Any) -> None:
        reader = copy.copy(backend)  # account keys etc. shared read-only; the chain object is its own
        reader.chain = type(backend.chain)(db)  # positioned at the canonical head committed in ``db``
        self._tester = EthereumTester(backend=reader, auto_mine_transactions=False)
        self._endpoints = endpoints

    def request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return _make_request(method, params, self._endpoints, self._tester, "0")


class ChainProvider(EthereumTesterProvider):
    """eth-tester's provider made thread-safe: every request under ``lock``, except reads of the last committed
    block (``eth_call``/``latest``, ``eth_chainId``, ``eth_blockNumber``, ``eth_accounts``), answered from a
    :class:`_ReadView` rebuilt after every mined block without taking the lock. ``lockfree_reads = False`` sends
    those through the lock too (the behaviour before; the benchmark compares both)."""

    def __init__(self, tester: EthereumTester, *, lock: threading.RLock, reads_db: Callable[[], Any]) -> None:
        super().__init__(tester)
        self.lock = lock
        self.lockfree_reads = True
        self._reads_db = reads_db
        self._view: _ReadView | None = None
        self.closers: list[Callable[[], object]] = []

    def close(self) -> None:
        """Stop answering from the read view and release what it holds (the chain file's read connection)."""
        self._view = None
        for close in self.closers:
            close()
        self.closers.clear()

    def head_moved(self) -> None:
        """Rebuild the read view on the committed head (called under ``lock`` once a block is durable)."""
        tester = self.ethereum_tester
        assert tester is not None
        self._view = _ReadView(backend=tester.backend, db=self._reads_db(), endpoints=self.api_endpoints)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        view = self._view
        at_head = method != "eth_call" or len(params) < 2 or params[1] == "latest"
        if view is not None and self.lockfree_reads and method in _LOCKFREE and at_head:
            return view.request(method, params)
        with self.lock:
            response: RPCResponse = super().make_request(method, params)
            return response


class _HeadHook:
    """Tells the provider when the canonical head moved (after the block is durable)."""

    head_moved: Callable[[], None] | None = None

    def _moved(self) -> None:
        if self.head_moved is not None:
            self.head_moved()


class _MemoryBackend(_HeadHook, PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend in memory, reporting head moves."""

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        hashes = super().mine_blocks(num_blocks, coinbase) if coinbase is not None else super().mine_blocks(num_blocks)
        self._moved()
        return hashes

    def revert_to_snapshot(self, snapshot: Any) -> None:
        super().revert_to_snapshot(snapshot)
        self._moved()


class _Backend(_HeadHook, PyEVMBackend):  # type: ignore[misc]
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
        self._moved()
        return hashes

    def revert_to_snapshot(self, snapshot: Any) -> None:
        super().revert_to_snapshot(snapshot)
        self._store.flush()
        self._moved()


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
        backend = _MemoryBackend(
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
    lock = threading.RLock()
    if store is None:
        memory_db = backend.chain.chaindb.db

        def reads_db() -> Any:
            return memory_db
    else:
        committed = _CommittedKeyValue(path=path)

        def reads_db() -> Any:
            return AtomicDB(committed)

    provider = ChainProvider(EthereumTester(backend), lock=lock, reads_db=reads_db)
    if store is not None:
        provider.closers.append(committed.close)
    w3 = Web3(provider)
    with lock:
        backend.head_moved = provider.head_moved
        provider.head_moved()
    deploy.check_eas(w3=w3, eas_address=EAS_ADDRESS)
    if schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, False) != USER_REVIEW_SCHEMA_UID:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, "User Review schema UID mismatch")
    return EmbeddedChain(
        w3=w3,
        relayer=relayer,
        dev_accounts=devs,
        lock=lock,
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
