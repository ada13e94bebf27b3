"""The ERC-8004 step of ``omatrust sync`` as wired from settings (registries configured per chain), and the §9
defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from web3 import Web3

from service.chain.eas_relayer import EasClient
from service.chain.erc8004 import parse_registries, registries_for
from service.cli.erc8004 import summary, sync_step
from service.config import Settings
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.workflows.erc8004_sync import Erc8004Report
from service.workflows.runtime import Runtime
from tests.erc8004.conftest import data_uri, deploy, registration
from tests.erc8004.solidity import Compiled
from tests.support.anvil import AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url

anvil_node = anvil_fixture()


def test_base_defaults_and_configured_registries() -> None:
    base = registries_for(chain_id=8453, configured={})
    sepolia = registries_for(chain_id=84532, configured={})
    assert base is not None
    assert sepolia is not None
    assert (base.identity, base.reputation) == ("0x8004A169FB4a3325136EB29fA0ceB6D2e539a432",
                                                "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63")  # fmt: skip
    assert (sepolia.identity, sepolia.reputation) == ("0x8004A818BFB912233c491871b3d84c89A494BD9e",
                                                      "0x8004B663056A597Dffe9eCcC1965A193B7388713")  # fmt: skip
    assert registries_for(chain_id=31337, configured={}) is None
    configured = parse_registries("8453=0x" + "11" * 20 + "/0x" + "22" * 20)
    override = registries_for(chain_id=8453, configured=configured)
    assert override is not None
    assert override.reputation.lower() == "0x" + "22" * 20
    for bad in ("8453=0x11", "x=0x" + "11" * 20 + "/0x" + "22" * 20, "8453"):
        with pytest.raises(ValueError, match="ERC-8004 registry entry"):
            parse_registries(bad)


@pytest.mark.anvil
@pytest.mark.node
def test_sync_step_indexes_the_configured_registries(
    anvil_node: AnvilNode, compiled: dict[str, Compiled], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil_node.url))
    chain = deploy(w3, compiled)
    owner, client = w3.eth.accounts[1], w3.eth.accounts[2]
    services = [{"name": "DID", "endpoint": "did:web:s.example"}]
    mapped = chain.register(owner=owner, uri=data_uri(registration(services=services)))
    lonely = chain.register(owner=owner, uri=data_uri(registration(services=[])))
    chain.give(client=client, agent_id=mapped, value=5)
    chain.give(client=client, agent_id=lonely, value=2)
    settings = Settings(erc8004_registries=f"{chain.registries.chain_id}={chain.identity}/{chain.reputation}")
    args = argparse.Namespace(chunk_blocks=100, from_block=None, to_block=None)
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        rt = Runtime(engine=engine, eas=EasClient(w3=w3, eas_address="0x" + "11" * 20, relayer=None), resolver=None,
                     controllers=None)  # fmt: skip
        report = sync_step(settings=settings, rt=rt, args=args)
        assert report is not None
        assert (report.feedback, report.unmapped_agents) == (2, [str(lonely)])
        again = sync_step(settings=settings, rt=rt, args=args)  # resumes from its checkpoint: nothing new
        assert again is not None
        assert again.feedback == 0
        engine.dispose()
    out = capsys.readouterr()
    assert "erc8004: synced blocks" in out.out
    assert f"agents not mapped to a service DID: {lonely}" in out.err
    assert sync_step(settings=Settings(), rt=rt, args=args) is None  # anvil's chain id has no default registries


def test_summary_reports_the_recheck() -> None:
    assert summary(Erc8004Report()) == "erc8004: nothing to read"
    line = summary(Erc8004Report(from_block=1, to_block=9, rechecked=3, upgraded=1))
    assert line.startswith("erc8004: synced blocks 1..9: 0 new feedback")
    assert line.endswith("; re-checked 3 open payment checks, 1 settled")
    idle = summary(Erc8004Report(rechecked=2))
    assert idle == "erc8004: nothing to read; re-checked 2 open payment checks, 0 settled"
