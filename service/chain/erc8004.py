"""ERC-8004 registries on one chain (PROTOCOLS.md §9): registry addresses, event decoding, reads, the log scanner.

Events of the Reputation Registry (topics / data, from the standard's ABI in ``contracts_abi/erc8004``):

* ``NewFeedback``: topics [sig, agentId, clientAddress, keccak(tag1)], data (feedbackIndex, value, valueDecimals,
  tag1, tag2, endpoint, feedbackURI, feedbackHash);
* ``FeedbackRevoked``: topics [sig, agentId, clientAddress, feedbackIndex], no data;
* ``ResponseAppended``: topics [sig, agentId, clientAddress, responder], data (feedbackIndex, responseURI,
  responseHash).

:class:`FeedbackScanner` reads them in block chunks with one ``eth_getLogs`` (all three topics) per chunk, in log
order; the caller commits each chunk with its checkpoint (see ``service.workflows.erc8004_sync``).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import Web3RPCError

from service.chain.node_reads import NodeReads
from service.domain import Reason
from service.errors import ChainRejected, ChainUnavailable

NEW_FEEDBACK_SIG = "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)"
FEEDBACK_REVOKED_SIG = "FeedbackRevoked(uint256,address,uint64)"
RESPONSE_APPENDED_SIG = "ResponseAppended(uint256,address,uint64,address,string,bytes32)"
NEW_FEEDBACK_TOPIC = "0x" + keccak(text=NEW_FEEDBACK_SIG).hex()
FEEDBACK_REVOKED_TOPIC = "0x" + keccak(text=FEEDBACK_REVOKED_SIG).hex()
RESPONSE_APPENDED_TOPIC = "0x" + keccak(text=RESPONSE_APPENDED_SIG).hex()
# Identity Registry: MetadataSet(uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey,
# bytes metadataValue) — emitted with key "agentWallet" whenever the agent's payment wallet is set or cleared.
METADATA_SET_TOPIC = "0x" + keccak(text="MetadataSet(uint256,string,string,bytes)").hex()
AGENT_WALLET_KEY_TOPIC = "0x" + keccak(text="agentWallet").hex()
ZERO_ADDRESS = "0x" + "00" * 20
_NEW_FEEDBACK_DATA = ["uint64", "int128", "uint8", "string", "string", "string", "string", "bytes32"]
_RESPONSE_DATA = ["uint64", "string", "bytes32"]

# PROTOCOLS.md §9: the registries' deployments (identity, reputation) per chain id.
DEFAULT_REGISTRIES: Mapping[int, tuple[str, str]] = {
    8453: ("0x8004A169FB4a3325136EB29fA0ceB6D2e539a432", "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63"),
    84532: ("0x8004A818BFB912233c491871b3d84c89A494BD9e", "0x8004B663056A597Dffe9eCcC1965A193B7388713"),
}


@functools.cache
def abi(contract: str) -> list[dict[str, Any]]:
    """``IdentityRegistry`` or ``ReputationRegistry``: the entries the service uses (contracts_abi/erc8004)."""
    text = files("contracts_abi").joinpath(f"erc8004/{contract}.abi.json").read_text(encoding="utf-8")
    result: list[dict[str, Any]] = json.loads(text)
    return result


@dataclass(frozen=True, slots=True)
class Registries:
    chain_id: int
    identity: str  # checksummed
    reputation: str

    @property
    def agent_registry(self) -> str:
        """The CAIP-10 ``agentRegistry`` string of the identity registry (lower-case address)."""
        return f"eip155:{self.chain_id}:{self.identity.lower()}"

    @property
    def checkpoint_name(self) -> str:
        return f"erc8004:{self.chain_id}:{self.reputation.lower()}"


def parse_registries(text: str) -> dict[int, tuple[str, str]]:
    """``8453=0xIdentity/0xReputation,31337=…`` → {chain id: (identity, reputation)}; empty text → {}.

    Raises:
        ValueError: malformed entry or address.
    """
    out: dict[int, tuple[str, str]] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        chain, sep, pair = entry.partition("=")
        identity, slash, reputation = pair.partition("/")
        if not sep or not slash or not chain.strip().isdigit():
            raise ValueError(f"ERC-8004 registry entry {entry!r}: expected <chain id>=<identity>/<reputation>")
        try:
            out[int(chain)] = (to_checksum_address(identity.strip()), to_checksum_address(reputation.strip()))
        except ValueError as exc:
            raise ValueError(f"ERC-8004 registry entry {entry!r}: bad address") from exc
    return out


def registries_for(*, chain_id: int, configured: Mapping[int, tuple[str, str]]) -> Registries | None:
    """The registries of ``chain_id``: configured ones first, then the §9 defaults (Base, Base Sepolia)."""
    pair = configured.get(chain_id) or DEFAULT_REGISTRIES.get(chain_id)
    if pair is None:
        return None
    return Registries(chain_id, to_checksum_address(pair[0]), to_checksum_address(pair[1]))


@dataclass(frozen=True, slots=True)
class LogPlace:
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class NewFeedback:
    place: LogPlace
    agent_id: int
    client: str  # lower-case
    index: int
    value: int
    decimals: int
    tag1: str
    tag2: str
    endpoint: str
    uri: str
    hash: str  # 0x… 32 bytes


@dataclass(frozen=True, slots=True)
class FeedbackRevoked:
    place: LogPlace
    agent_id: int
    client: str
    index: int


@dataclass(frozen=True, slots=True)
class ResponseAppended:
    place: LogPlace
    agent_id: int
    client: str
    index: int
    responder: str
    uri: str
    hash: str


Erc8004Event = NewFeedback | FeedbackRevoked | ResponseAppended


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _topic_int(topic: Any) -> int:
    return int(_hex(topic), 16)


def _topic_address(topic: Any) -> str:
    return "0x" + _hex(topic)[-40:]


def decode_event(log: Mapping[str, Any]) -> Erc8004Event | None:
    """One registry log → event; None for another event or a malformed log (anyone can deploy a look-alike)."""
    topics = [_hex(t) for t in log["topics"]]
    if not topics:
        return None
    place = LogPlace(
        int(log["blockNumber"]), _hex(log["blockHash"]), _hex(log["transactionHash"]), int(log["logIndex"])
    )
    data = bytes.fromhex(_hex(log["data"])[2:])
    try:
        if topics[0] == NEW_FEEDBACK_TOPIC and len(topics) == 4:
            index, value, decimals, tag1, tag2, endpoint, uri, fhash = decode(_NEW_FEEDBACK_DATA, data)
            return NewFeedback(
                place, _topic_int(topics[1]), _topic_address(topics[2]), index, value, decimals,
                tag1, tag2, endpoint, uri, "0x" + fhash.hex(),
            )  # fmt: skip
        if topics[0] == FEEDBACK_REVOKED_TOPIC and len(topics) == 4:
            return FeedbackRevoked(place, _topic_int(topics[1]), _topic_address(topics[2]), _topic_int(topics[3]))
        if topics[0] == RESPONSE_APPENDED_TOPIC and len(topics) == 4:
            index, uri, rhash = decode(_RESPONSE_DATA, data)
            return ResponseAppended(
                place, _topic_int(topics[1]), _topic_address(topics[2]), index, _topic_address(topics[3]),
                uri, "0x" + rhash.hex(),
            )  # fmt: skip
    except Exception:  # eth_abi raises many types on hostile data: skip the log
        return None
    return None


def _metadata_value(log: Mapping[str, Any]) -> bytes | None:
    """The ``metadataValue`` of a ``MetadataSet`` log; None when its data does not decode."""
    try:
        _key, value = decode(["string", "bytes"], bytes.fromhex(_hex(log["data"])[2:]))
    except Exception:  # eth_abi raises many types on hostile data: not a wallet announcement
        return None
    return bytes(value)


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What the Identity Registry says about an agent now (None owner: unknown agent)."""

    owner: str | None
    wallet: str | None
    token_uri: str
    approved: str | None


class RegistryClient(NodeReads):
    """Reads of one chain's ERC-8004 registries. Construct freely: nothing is read until needed."""

    def __init__(self, *, w3: Web3, registries: Registries, lock: threading.RLock | None = None) -> None:
        self.w3 = w3
        self.registries = registries
        self._lock = lock

    def logs(self, *, from_block: int, to_block: int) -> list[Any]:
        """The three feedback events of the Reputation Registry in [from_block, to_block]. Raises ChainUnavailable."""
        topics = [[NEW_FEEDBACK_TOPIC, FEEDBACK_REVOKED_TOPIC, RESPONSE_APPENDED_TOPIC]]
        return list(
            self.fetch_logs(address=self.registries.reputation, topics=topics, from_block=from_block, to_block=to_block)
        )

    def _call(
        self, signature: str, types: list[str], args: list[Any], out: list[str], *, block: int | None = None
    ) -> tuple[Any, ...]:
        data = _selector(signature) + encode(types, args)
        with self._rpc(signature):
            raw = self.w3.eth.call({"to": self.registries.identity, "data": data},
                                   block_identifier="latest" if block is None else block)  # fmt: skip
        try:
            return tuple(decode(out, bytes(raw)))
        except Exception as exc:  # a node answering garbage is a node failure
            raise ChainUnavailable(Reason.RPC_FAILED, f"{signature}: undecodable answer") from exc

    def agent(self, *, agent_id: int) -> AgentFacts:
        """Owner, payment wallet, tokenURI and approved operator of ``agent_id`` (owner None: no such agent).

        Raises:
            ChainUnavailable: RPC failure.
        """
        try:
            (owner,) = self._call("ownerOf(uint256)", ["uint256"], [agent_id], ["address"])
        except ChainRejected:
            return AgentFacts(None, None, "", None)
        (uri,) = self._call("tokenURI(uint256)", ["uint256"], [agent_id], ["string"])
        (wallet,) = self._call("getAgentWallet(uint256)", ["uint256"], [agent_id], ["address"])
        (approved,) = self._call("getApproved(uint256)", ["uint256"], [agent_id], ["address"])
        zero = "0x" + "00" * 20
        return AgentFacts(
            owner.lower(),
            None if wallet.lower() == zero else wallet.lower(),
            uri,
            None if approved.lower() == zero else approved.lower(),
        )

    def wallet_at(self, *, agent_id: int, block: int, log_index: int | None = None) -> str | None:
        """The agent's ``getAgentWallet`` as the chain had it at ``block`` (None: unset then, or no agent yet).

        Read with ``eth_call`` at that block; a node that no longer serves that block's state (pruned: most nodes
        that are not archive nodes) answers with an error, and the wallet is then taken from the registry's
        ``MetadataSet(agentId, "agentWallet", …)`` history up to that block (up to ``log_index`` within it).

        Raises:
            ChainUnavailable: RPC failure.
        """
        try:
            (wallet,) = self._call("getAgentWallet(uint256)", ["uint256"], [agent_id], ["address"], block=block)
        except ChainRejected:
            return None
        except ChainUnavailable as exc:
            if not isinstance(exc.__cause__, Web3RPCError):  # unreachable, not refusing: no fallback
                raise
            return self.wallet_from_events(agent_id=agent_id, block=block, log_index=log_index)
        return None if wallet.lower() == ZERO_ADDRESS else wallet.lower()

    def wallet_from_events(self, *, agent_id: int, block: int, log_index: int | None = None) -> str | None:
        """The last ``agentWallet`` the Identity Registry announced for ``agent_id`` at or before ``block`` (before
        ``log_index`` in that block when given): its 20-byte value, None when cleared (empty) or never set.

        Raises:
            ChainUnavailable: RPC failure.
        """
        topics = [METADATA_SET_TOPIC, "0x" + agent_id.to_bytes(32, "big").hex(), AGENT_WALLET_KEY_TOPIC]
        wallet: str | None = None
        for log in self.fetch_logs(address=self.registries.identity, topics=topics, from_block=0, to_block=block):
            if int(log["blockNumber"]) == block and log_index is not None and int(log["logIndex"]) > log_index:
                break
            value = _metadata_value(log)
            if value is not None:
                wallet = "0x" + value.hex() if len(value) == 20 else None
        return None if wallet == ZERO_ADDRESS else wallet

    def is_operator(self, *, owner: str, spender: str) -> bool:
        """``isApprovedForAll(owner, spender)``. Raises ChainUnavailable."""
        (ok,) = self._call("isApprovedForAll(address,address)", ["address", "address"], [owner, spender], ["bool"])
        return bool(ok)


@dataclass(frozen=True, slots=True)
class EventChunk:
    from_block: int
    to_block: int
    events: tuple[Erc8004Event, ...]


class FeedbackScanner:
    """Chunks of decoded registry events from a checkpoint up to ``head - confirmations``."""

    def __init__(self, *, client: RegistryClient, chunk_blocks: int = 2_000, confirmations: int = 0) -> None:
        self.client = client
        self.chunk_blocks = chunk_blocks
        self.confirmations = confirmations

    def sync(
        self, *, checkpoint: int | None, start_block: int = 0, to_block: int | None = None
    ) -> Iterator[EventChunk]:
        """Raises ChainUnavailable (chunks already yielded stay valid)."""
        head = self.client.block_number() - self.confirmations
        if to_block is not None:
            head = min(head, to_block)
        start = start_block if checkpoint is None else max(start_block, checkpoint + 1)
        while start <= head:
            end = min(head, start + self.chunk_blocks - 1)
            events = (decode_event(log) for log in self.client.logs(from_block=start, to_block=end))
            yield EventChunk(start, end, tuple(e for e in events if e is not None))
            start = end + 1
