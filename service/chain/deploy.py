"""Putting EAS + SchemaRegistry on a chain at fixed addresses, and registering the User Review schema.

Why not place the artifact's ``deployedBytecode``: both contracts have immutables (Semver's version numbers;
EAS's schema-registry address and OpenZeppelin EIP712's hashed name/version, cached chain id, own address and domain
separator) that the constructor writes into the runtime code; the artifact has zeros there. The EAS constructor
also writes **storage** (``EIP1271Verifier._name = "EAS"``, read by ``getName()``). So :func:`predeploys` really
deploys both contracts once per process in a scratch py-evm chain and copies their runtime code and every non-zero
storage slot the constructors wrote (fixed slots only: mappings are empty after construction).
EIP712 caches the separator for the address it was constructed at; at any other address (our fixed one) it
recomputes it from ``address(this)`` and ``block.chainid`` on every call, so the domain separator is right for the
placed address and for any chain — checked after placing (``expected_domain``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.providers.eth_tester import EthereumTesterProvider

from service.chain import abi
from service.chain.codec import ZERO_ADDRESS, schema_uid
from service.chain.delegation import EasDomain
from service.chain.rpc import rpc_errors
from service.domain import USER_REVIEW_SCHEMA, Reason
from service.errors import ChainRejected, ChainUnavailable

EAS_NAME = "EAS"
EAS_VERSION = "1.4.0"  # what eas-contracts 1.9.0 signs with
DEV_CLIENT_MARKERS = ("anvil", "hardhat")
REGISTER_GAS = 400_000  # register() of the User Review schema uses ~166k
_SCANNED_SLOTS = 32  # constructor-written state lives in the first few fixed slots


@dataclass(frozen=True, slots=True)
class Predeploy:
    """Runtime code + constructor-written storage of a contract, ready to be placed at ``address``."""

    name: str
    address: str
    code: bytes
    storage: tuple[tuple[int, int], ...]  # (slot, value), non-zero only


def registry_creation() -> bytes:
    return abi.creation_code("SchemaRegistry")


def eas_creation(*, registry_address: str) -> bytes:
    return abi.creation_code("EAS") + encode(["address"], [to_checksum_address(registry_address)])


@functools.cache
def predeploys(*, eas_address: str, registry_address: str) -> tuple[Predeploy, Predeploy]:
    """(SchemaRegistry, EAS) as they look right after construction, EAS wired to ``registry_address``.
    Computed once per process (≈ 20 ms) in a scratch in-memory chain; chain-independent."""
    scratch = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
    sender = scratch.eth.accounts[0]
    out: list[Predeploy] = []
    for name, address, creation in (
        ("SchemaRegistry", registry_address, registry_creation()),
        ("EAS", eas_address, eas_creation(registry_address=registry_address)),
    ):
        tx_hash = scratch.eth.send_transaction({"from": sender, "data": creation, "gas": 8_000_000})
        deployed = scratch.eth.get_transaction_receipt(tx_hash)["contractAddress"]
        if deployed is None:  # pragma: no cover - the artifacts' constructors do not revert
            raise ChainRejected(Reason.TX_REVERTED, f"{name} constructor failed")
        code = bytes(scratch.eth.get_code(deployed))
        storage = tuple(
            (slot, value)
            for slot in range(_SCANNED_SLOTS)
            if (value := int.from_bytes(bytes(scratch.eth.get_storage_at(deployed, slot)), "big"))
        )
        out.append(Predeploy(name=name, address=to_checksum_address(address), code=code, storage=storage))
    return out[0], out[1]


def expected_domain(*, chain_id: int, eas_address: str) -> EasDomain:
    return EasDomain(
        name=EAS_NAME, version=EAS_VERSION, chain_id=chain_id, verifying_contract=to_checksum_address(eas_address)
    )


def is_dev_node(*, client_version: str) -> bool:
    return any(marker in client_version.lower() for marker in DEV_CLIENT_MARKERS)


def _dev_rpc(w3: Web3, methods: tuple[str, ...], params: list[Any]) -> None:
    """Call the first dev-node method the node knows (anvil_* or hardhat_*)."""
    last: Any = None
    for method in methods:
        with rpc_errors(method):
            answer = w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" not in answer:
            return
        last = answer["error"]
    raise ChainUnavailable(Reason.RPC_FAILED, f"{methods[0]} refused: {last}")


def place(*, w3: Web3, contract: Predeploy) -> None:
    """Write code and storage at ``contract.address`` on a dev node (``anvil_setCode`` / ``hardhat_setCode``, and
    ``*_setStorageAt``). Raises ChainUnavailable."""
    _dev_rpc(w3, ("anvil_setCode", "hardhat_setCode"), [contract.address, "0x" + contract.code.hex()])
    for slot, value in contract.storage:
        _dev_rpc(
            w3,
            ("anvil_setStorageAt", "hardhat_setStorageAt"),
            [contract.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()],
        )


def check_eas(*, w3: Web3, eas_address: str) -> None:
    """Verify a placed EAS: name ``"EAS"`` and the expected domain separator for this chain and address.

    Raises:
        ChainUnavailable: RPC failure.
        ChainRejected(TX_REVERTED): something differs (the placement is wrong).
    """
    eas = eas_contract(w3=w3, address=eas_address)
    with rpc_errors("check EAS"):
        chain_id = int(w3.eth.chain_id)
        name = str(eas.functions.getName().call())
        separator = bytes(eas.functions.getDomainSeparator().call())
    if name != EAS_NAME or separator != expected_domain(chain_id=chain_id, eas_address=eas_address).separator():
        raise ChainRejected(Reason.TX_REVERTED, f"EAS at {eas_address}: unexpected name {name!r} or domain separator")


def place_contracts(*, w3: Web3, eas_address: str, registry_address: str) -> list[str]:
    """On a dev node, place SchemaRegistry / EAS where there is no code. Returns what it did.

    Raises:
        ChainUnavailable: RPC failure or the node refused ``*_setCode``.
        ChainRejected(TX_REVERTED): the placed EAS does not check out (see :func:`check_eas`).
    """
    done: list[str] = []
    registry, eas = predeploys(
        eas_address=to_checksum_address(eas_address), registry_address=to_checksum_address(registry_address)
    )
    for contract in (registry, eas):
        with rpc_errors("eth_getCode"):
            present = bool(w3.eth.get_code(to_checksum_address(contract.address)))
        if not present:
            place(w3=w3, contract=contract)
            done.append(f"placed {contract.name} at {contract.address}")
    check_eas(w3=w3, eas_address=eas_address)
    return done


def eas_contract(*, w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=to_checksum_address(address), abi=abi.abi("EAS"))


def registry_contract(*, w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=to_checksum_address(address), abi=abi.abi("SchemaRegistry"))


def schema_registered(*, w3: Web3, registry_address: str, uid: str) -> bool:
    """True when ``getSchema(uid)`` returns a record (an unknown UID returns an all-zero record).

    Raises:
        ChainUnavailable: RPC failure.
    """
    with rpc_errors("getSchema"):
        record = registry_contract(w3=w3, address=registry_address).functions.getSchema(uid).call()
    return bytes(record[0]) != b"\x00" * 32


def register_schema(
    *,
    w3: Web3,
    registry_address: str,
    payer: LocalAccount,
    schema: str = USER_REVIEW_SCHEMA,
    resolver: str = ZERO_ADDRESS,
    revocable: bool = False,
    receipt_timeout: float = 120.0,
) -> str:
    """Send ``register(schema, resolver, revocable)`` paid by ``payer`` and wait for it. Returns the tx hash.

    Raises:
        ChainUnavailable: RPC failure / no receipt in time.
        ChainRejected: the registration reverted (e.g. ``AlreadyExists``).
    """
    registry = registry_contract(w3=w3, address=registry_address)
    with rpc_errors("register schema"):
        chain_id = w3.eth.chain_id
        nonce = w3.eth.get_transaction_count(payer.address, "pending")
        fees = fee_fields(w3=w3)
        tx = registry.functions.register(schema, to_checksum_address(resolver), revocable).build_transaction(
            {"from": payer.address, "nonce": nonce, "gas": REGISTER_GAS, "chainId": chain_id, **fees}
        )
        signed = payer.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=receipt_timeout, poll_latency=0.05)
    if receipt["status"] != 1:
        raise ChainRejected(Reason.TX_REVERTED, "schema registration reverted")
    return "0x" + bytes(tx_hash).hex()


def fee_fields(*, w3: Web3) -> dict[str, int]:
    """EIP-1559 fee fields (max fee = 2 × base fee + tip), or ``gasPrice`` on a chain without a base fee."""
    block = w3.eth.get_block("latest")
    base = block.get("baseFeePerGas")
    if base is None:
        return {"gasPrice": int(w3.eth.gas_price)}
    try:
        tip = int(w3.eth.max_priority_fee)
    except (ValueError, NotImplementedError, Web3RPCError):  # nodes without eth_maxPriorityFeePerGas
        tip = 10**9
    return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}


def bootstrap(
    *,
    w3: Web3,
    eas_address: str,
    registry_address: str,
    payer: LocalAccount | None,
    say: Callable[[str], object] = lambda _line: None,
) -> list[str]:
    """Idempotently make the chain usable: on a dev node (anvil/hardhat) place missing contracts; on any chain
    register the User Review schema when missing. Each step is reported through ``say`` as it is done (so a later
    failure does not hide what already happened); the same lines are returned.

    Raises:
        ChainUnavailable: RPC failure.
        ChainRejected: contracts missing on a non-dev chain (TX_REVERTED), schema missing and no payer
            (SCHEMA_MISMATCH), or a revert.
    """
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        say(line)

    with rpc_errors("web3_clientVersion"):
        client = str(w3.client_version)
        chain_id = int(w3.eth.chain_id)
    note(f"node: {client} (chain id {chain_id})")
    if is_dev_node(client_version=client):
        placed = place_contracts(w3=w3, eas_address=eas_address, registry_address=registry_address)
        for line in placed or ["EAS and SchemaRegistry already present"]:
            note(line)
    else:
        with rpc_errors("eth_getCode"):
            missing = [a for a in (registry_address, eas_address) if not w3.eth.get_code(to_checksum_address(a))]
        if missing:
            raise ChainRejected(Reason.TX_REVERTED, f"no contract code at {', '.join(missing)} (not a dev node)")
        note("EAS and SchemaRegistry present")
    uid = schema_uid(USER_REVIEW_SCHEMA, ZERO_ADDRESS, False)
    if schema_registered(w3=w3, registry_address=registry_address, uid=uid):
        note(f"User Review schema {uid} already registered")
    elif payer is None:
        raise ChainRejected(Reason.SCHEMA_MISMATCH, f"User Review schema {uid} not registered and no relayer key")
    else:
        tx_hash = register_schema(w3=w3, registry_address=registry_address, payer=payer)
        note(f"registered User Review schema {uid} (tx {tx_hash})")
    return lines
