"""ERC-8004 fixtures: compiled test registries (npm solc), deployed on anvil, a loopback HTTPS file host."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3

from service.chain.erc8004 import Registries
from tests.erc8004.solidity import Compiled, compile_registries
from tests.support.didweb_host import DidWebHost


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    return compile_registries(tmp_path_factory.mktemp("solc"))


@pytest.fixture(scope="session")
def files_host() -> Iterator[DidWebHost]:
    host = DidWebHost().start()
    yield host
    host.stop()


def send(w3: Web3, *, sender: str, to: str | None, data: bytes) -> Any:
    """Send a transaction from an unlocked anvil account and wait for its receipt (reverts raise)."""
    tx: dict[str, Any] = {"from": sender, "data": data, "gas": 3_000_000}
    if to is not None:
        tx["to"] = to
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx), timeout=10)  # type: ignore[arg-type]
    assert receipt["status"] == 1, receipt
    return receipt


def calldata(signature: str, types: list[str], args: list[Any]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, args)


@dataclass
class Deployed:
    w3: Web3
    registries: Registries

    @property
    def identity(self) -> str:
        return self.registries.identity

    @property
    def reputation(self) -> str:
        return self.registries.reputation

    def register(self, *, owner: str, uri: str) -> int:
        receipt = send(self.w3, sender=owner, to=self.identity,
                       data=calldata("register(string)", ["string"], [uri]))  # fmt: skip
        registered = keccak(text="Registered(uint256,string,address)")
        for log in receipt["logs"]:
            if bytes(log["topics"][0]) == registered:
                return int.from_bytes(bytes(log["topics"][1]), "big")
        raise AssertionError("no Registered event")

    def give(
        self, *, client: str, agent_id: int, value: int, decimals: int = 0, tag1: str = "starred", tag2: str = "",
        endpoint: str = "", uri: str = "", file_hash: bytes = b"\0" * 32,
    ) -> Any:  # fmt: skip
        data = calldata(
            "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
            ["uint256", "int128", "uint8", "string", "string", "string", "string", "bytes32"],
            [agent_id, value, decimals, tag1, tag2, endpoint, uri, file_hash],
        )
        return send(self.w3, sender=client, to=self.reputation, data=data)

    def revoke(self, *, client: str, agent_id: int, index: int) -> Any:
        data = calldata("revokeFeedback(uint256,uint64)", ["uint256", "uint64"], [agent_id, index])
        return send(self.w3, sender=client, to=self.reputation, data=data)

    def respond(self, *, responder: str, agent_id: int, client: str, index: int, uri: str) -> Any:
        data = calldata(
            "appendResponse(uint256,address,uint64,string,bytes32)",
            ["uint256", "address", "uint64", "string", "bytes32"],
            [agent_id, client, index, uri, keccak(text=uri)],
        )
        return send(self.w3, sender=responder, to=self.reputation, data=data)

    def set_wallet(self, *, owner: str, agent_id: int, wallet: LocalAccount) -> Any:
        """``setAgentWallet``: ``wallet`` signs the registry's AgentWalletSet typed data, the owner sends it."""
        deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + 3600
        signed = wallet.sign_typed_data(
            domain_data={"name": "ERC8004IdentityRegistry", "version": "1", "chainId": self.registries.chain_id,
                         "verifyingContract": self.identity},
            message_types={"AgentWalletSet": [
                {"name": "agentId", "type": "uint256"}, {"name": "newWallet", "type": "address"},
                {"name": "owner", "type": "address"}, {"name": "deadline", "type": "uint256"}]},
            message_data={"agentId": agent_id, "newWallet": wallet.address,
                          "owner": Web3.to_checksum_address(owner), "deadline": deadline},
        )  # fmt: skip
        data = calldata("setAgentWallet(uint256,address,uint256,bytes)", ["uint256", "address", "uint256", "bytes"],
                        [agent_id, wallet.address, deadline, bytes(signed.signature)])  # fmt: skip
        return send(self.w3, sender=owner, to=self.identity, data=data)

    def transfer_agent(self, *, owner: str, to: str, agent_id: int) -> Any:
        data = calldata(
            "transferFrom(address,address,uint256)", ["address", "address", "uint256"], [owner, to, agent_id]
        )
        return send(self.w3, sender=owner, to=self.identity, data=data)


def deploy(w3: Web3, compiled: dict[str, Compiled]) -> Deployed:
    deployer = w3.eth.accounts[0]
    identity = send(w3, sender=deployer, to=None, data=compiled["Erc8004IdentityRegistry"].bytecode)
    ctor = encode(["address"], [identity["contractAddress"]])
    reputation = send(w3, sender=deployer, to=None, data=compiled["Erc8004ReputationRegistry"].bytecode + ctor)
    registries = Registries(int(w3.eth.chain_id), identity["contractAddress"], reputation["contractAddress"])
    return Deployed(w3, registries)


def data_uri(document: Any) -> str:
    return "data:application/json;base64," + base64.b64encode(json.dumps(document).encode()).decode()


def registration(
    *, services: list[dict[str, str]], registrations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "type": "https://eips.ethereum.org/EIPS/eip-8004#registration-v1",
        "name": "test agent",
        "description": "an agent of the ERC-8004 tests",
        "image": "https://example.com/a.png",
        "services": services,
        "x402Support": True,
        "registrations": registrations or [],
    }


def tmp_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path
