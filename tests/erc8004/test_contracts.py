"""Our test registries implement the standard's interface and its revert rules (anvil), and the stored ABIs are
consistent with their provenance and with the contracts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError

from service.chain.erc8004 import (
    FEEDBACK_REVOKED_TOPIC,
    NEW_FEEDBACK_TOPIC,
    RESPONSE_APPENDED_TOPIC,
    abi,
)
from tests.erc8004.conftest import Deployed, calldata, deploy
from tests.erc8004.solidity import Compiled
from tests.support.anvil import AnvilNode, anvil_fixture

ROOT = Path(__file__).resolve().parents[2]
anvil_node = anvil_fixture()


def _shape(entry: dict[str, Any]) -> tuple[Any, ...]:
    def params(items: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple((p["type"], bool(p.get("indexed", False))) for p in items)

    return entry["type"], entry.get("name"), params(entry.get("inputs", [])), params(entry.get("outputs", []))


@pytest.mark.node
@pytest.mark.parametrize(("stored", "ours"), [("IdentityRegistry", "Erc8004IdentityRegistry"),
                                              ("ReputationRegistry", "Erc8004ReputationRegistry")])  # fmt: skip
def test_test_contracts_implement_every_stored_abi_entry(compiled: dict[str, Compiled], stored: str, ours: str) -> None:
    implemented = {_shape(e) for e in compiled[ours].abi}
    missing = [_shape(e) for e in abi(stored) if _shape(e) not in implemented]
    assert missing == []


def test_event_topics_match_the_stored_abi() -> None:
    def topic(name: str) -> str:
        (entry,) = [e for e in abi("ReputationRegistry") if e["type"] == "event" and e["name"] == name]
        sig = f"{name}({','.join(p['type'] for p in entry['inputs'])})"
        return "0x" + Web3.keccak(text=sig).hex().removeprefix("0x")

    assert topic("NewFeedback") == NEW_FEEDBACK_TOPIC
    assert topic("FeedbackRevoked") == FEEDBACK_REVOKED_TOPIC
    assert topic("ResponseAppended") == RESPONSE_APPENDED_TOPIC


def test_stored_abis_match_their_provenance_hashes() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "extract_erc8004_abi.py"), "--check"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    stored = json.loads((ROOT / "contracts_abi" / "erc8004" / "ReputationRegistry.abi.json").read_text())
    assert {e.get("name") for e in stored} >= {"giveFeedback", "NewFeedback", "FeedbackRevoked", "ResponseAppended"}


@pytest.fixture(scope="module")
def registries(anvil_node: AnvilNode, compiled: dict[str, Compiled]) -> Deployed:
    return deploy(Web3(Web3.HTTPProvider(anvil_node.url)), compiled)


def _reverts(d: Deployed, *, sender: str, to: str, data: bytes) -> str:
    with pytest.raises(ContractLogicError) as info:
        d.w3.eth.call({"from": sender, "to": to, "data": data})  # type: ignore[typeddict-item]
    return str(info.value)


def _give(agent_id: int, *, decimals: int = 0) -> bytes:
    return calldata(
        "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
        ["uint256", "int128", "uint8", "string", "string", "string", "string", "bytes32"],
        [agent_id, 5, decimals, "starred", "", "", "", b"\0" * 32],
    )


@pytest.mark.anvil
def test_revert_rules(registries: Deployed) -> None:
    owner, operator, client, approved = registries.w3.eth.accounts[1:5]
    agent = registries.register(owner=owner, uri="data:,{}")
    registries.w3.eth.send_transaction({"from": owner, "to": registries.identity,  # type: ignore[typeddict-item]
                                        "data": calldata("setApprovalForAll(address,bool)", ["address", "bool"],
                                                         [operator, True])})  # fmt: skip
    registries.w3.eth.send_transaction({"from": owner, "to": registries.identity,  # type: ignore[typeddict-item]
                                        "data": calldata("approve(address,uint256)", ["address", "uint256"],
                                                         [approved, agent])})  # fmt: skip
    rep = registries.reputation
    assert "Self-feedback not allowed" in _reverts(registries, sender=owner, to=rep, data=_give(agent))
    assert "Self-feedback not allowed" in _reverts(registries, sender=operator, to=rep, data=_give(agent))
    assert "Self-feedback not allowed" in _reverts(registries, sender=approved, to=rep, data=_give(agent))
    assert "too many decimals" in _reverts(registries, sender=client, to=rep, data=_give(agent, decimals=19))
    assert "nonexistent agent" in _reverts(registries, sender=client, to=rep, data=_give(agent + 99))
    summary = calldata("getSummary(uint256,address[],string,string)", ["uint256", "address[]", "string", "string"],
                       [agent, [], "", ""])  # fmt: skip
    assert "clientAddresses required" in _reverts(registries, sender=client, to=rep, data=summary)
    registries.give(client=client, agent_id=agent, value=4)
    registries.revoke(client=client, agent_id=agent, index=1)
    revoke = calldata("revokeFeedback(uint256,uint64)", ["uint256", "uint64"], [agent, 1])
    assert "Already revoked" in _reverts(registries, sender=client, to=rep, data=revoke)
    types = ["uint256", "address", "uint64", "string", "bytes32"]
    empty = calldata("appendResponse(uint256,address,uint64,string,bytes32)", types, [agent, client, 1, "", b"\0" * 32])
    assert "Empty URI" in _reverts(registries, sender=owner, to=rep, data=empty)
