"""Hostile chain input cannot stop the OMATrust or ERC-8004 indexers (the same per-item isolation as User Review
sync: ``service.workflows.isolation``). Poison is made for real on anvil — a direct ``EAS.attest`` with
non-canonical or garbage data, an ERC-8004 feedback whose strings hold NUL or whose file URI cannot be parsed, an
agent whose tokenURI holds NUL — followed by a good item: the run completes, the reject is stored with its reason,
the good item is indexed, the checkpoint reaches the head and a second run stores nothing new. Faults that no chain
input triggers today (a judge or fetcher that raises) are injected in-process.
"""

# ruff: noqa: F811  (fixtures imported from tests/authorization and tests/erc8004 are parameters here)
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from web3 import Web3

from service.chain import omatrust_codec as oc
from service.chain.codec import schema_uid
from service.chain.erc8004 import FeedbackScanner, RegistryClient
from service.dids import did_address
from service.identity.fetcher import SafeFetcher
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import (
    Erc8004AgentRow,
    Erc8004FeedbackRow,
    Erc8004ResponseRow,
    IndexerProgressRow,
    OmatrustAttestationRow,
)
from service.workflows import omatrust_sync as omatrust_module
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.erc8004_sync import Erc8004Deps, Erc8004Report, sync_erc8004
from service.workflows.omatrust_sync import CHECKPOINT, OmatrustSyncReport, sync_omatrust
from tests.authorization.conftest import Env, _loopback, chain, env  # noqa: F401
from tests.erc8004.conftest import Deployed, compiled, data_uri, deploy, files_host, registration  # noqa: F401
from tests.erc8004.solidity import Compiled
from tests.support.anvil import AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()
KB_UID = schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True)


# -- OMATrust attestations (Key Binding, Controller Witness, Linked Identifier, User Review Response)


def _key_binding_data(subject: str, key_id: str) -> bytes:
    return oc.encode_record(schema=oc.KEY_BINDING_SCHEMA,
                            values=[subject, key_id, "", ["assertionMethod"], [], 0, 0, 0])  # fmt: skip


def _omatrust_sync(env: Env) -> OmatrustSyncReport:
    return sync_omatrust(rt=env.rt, client=env.rt.eas, to_block=env.rt.eas.block_number())


def _omatrust_rows(env: Env) -> dict[str, OmatrustAttestationRow]:
    with Session(env.engine) as s:
        return {r.uid: r for r in s.exec(select(OmatrustAttestationRow))}


def _checkpoint(engine: Any, name: str) -> int | None:
    with Session(engine) as s:
        row = s.get(IndexerProgressRow, name)
        return row.last_block if row is not None else None


def _poison_key_bindings(env: Env) -> dict[str, bytes]:
    """Key Binding attestations made with a direct ``EAS.attest``, each data a different poison."""
    sender = env.merchant().address
    recipient = did_address(env.subject)
    good = _key_binding_data(env.subject, "did:pkh:eip155:1:" + sender)
    aliased = bytearray(good)
    aliased[30:32] = b"\x00\x00"  # the first string's offset points into the head: an aliased, non-canonical encoding
    purposes = bytearray(good)
    at = int.from_bytes(good[3 * 32 : 4 * 32], "big")  # where keyPurpose starts: its element count
    purposes[at : at + 32] = (2**200).to_bytes(32, "big")  # eth_abi would try to read that many
    poisons = {
        "garbage": bytes(range(256)),
        "trailing": good + b"\x01" * 32,
        "aliased": bytes(aliased),
        "bad-tail": good[:-1] + b"\x01",  # the last array claims one element the data does not hold
        "nul": _key_binding_data(env.subject, "\x00"),
        "over-budget": bytes(purposes),
    }
    return {
        env.attest(sender, uid=KB_UID, data=data, recipient=recipient, revocable=True).uid: data
        for data in poisons.values()
    }


def test_poison_omatrust_attestations_are_stored_as_rejects_and_sync_carries_on(env: Env) -> None:
    poisoned = _poison_key_bindings(env)
    good = env.key_binding(env.merchant().address, subject=env.subject, key_id="did:pkh:eip155:1:0xgood")
    report = _omatrust_sync(env)
    rows = _omatrust_rows(env)
    for uid in poisoned:
        assert rows[uid].status == "rejected", uid
        assert rows[uid].reason == "attestation-data-invalid", (uid, rows[uid].detail)
        assert rows[uid].detail
    assert rows[good.uid].status == "valid"
    assert rows[good.uid].fields["key_id"] == "did:pkh:eip155:1:0xgood"
    assert (report.stored, report.rejected) == (len(poisoned) + 1, len(poisoned))
    assert _checkpoint(env.engine, CHECKPOINT) == env.rt.eas.block_number()
    again = _omatrust_sync(env)  # nothing new: the same rows, none added
    assert (again.stored, again.rejected) == (0, 0)
    assert _omatrust_rows(env).keys() == rows.keys()


def test_omatrust_judge_and_store_failures_become_rejects(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = env.merchant().address
    judged = env.key_binding(sender, subject=env.subject, key_id="explodes-while-judged")
    stored = env.key_binding(sender, subject=env.subject, key_id="explodes-while-stored")
    fine = env.key_binding(sender, subject=env.subject, key_id="fine")
    real_row = omatrust_module._row

    def row(rt: Any, found: Any, now: int) -> OmatrustAttestationRow:
        if found.uid == judged.uid:
            raise RuntimeError("a bug or a hostile input")
        out = real_row(rt, found, now)
        if found.uid == stored.uid:
            out.attestation_time = 2**70  # no BIGINT holds it: the driver refuses it at flush (either backend)
        return out

    monkeypatch.setattr(omatrust_module, "_row", row)
    report = _omatrust_sync(env)
    rows = _omatrust_rows(env)
    assert (rows[judged.uid].status, rows[judged.uid].reason) == ("rejected", "judge-failed")
    assert (rows[stored.uid].status, rows[stored.uid].reason) == ("rejected", "judge-failed")
    assert rows[stored.uid].detail.startswith("storing raised")
    assert rows[fine.uid].status == "valid"
    assert (report.stored, report.rejected) == (3, 2)
    assert _checkpoint(env.engine, CHECKPOINT) == env.rt.eas.block_number()


def test_omatrust_crash_mid_chunk_resumes_without_loss_or_duplicates(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = env.merchant().address
    uids = [env.key_binding(sender, subject=env.subject, key_id=f"k{i}").uid for i in range(3)]
    before = _checkpoint(env.engine, CHECKPOINT)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the process dies between the chunk's two transactions

    monkeypatch.setattr(omatrust_module, "advance_indexer_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        _omatrust_sync(env)
    assert _checkpoint(env.engine, CHECKPOINT) == before  # the checkpoint did not run ahead
    monkeypatch.undo()
    report = _omatrust_sync(env)
    rows = _omatrust_rows(env)
    assert all(rows[u].status == "valid" for u in uids)
    assert report.stored == 0  # stored by the first transaction, re-read and skipped as known
    assert _checkpoint(env.engine, CHECKPOINT) == env.rt.eas.block_number()


# -- ERC-8004 feedback


@pytest.fixture(scope="module")
def registries(anvil_node: AnvilNode, compiled: dict[str, Compiled]) -> Deployed:
    return deploy(Web3(Web3.HTTPProvider(anvil_node.url)), compiled)


@pytest.fixture
def deps(registries: Deployed, files_host: DidWebHost, tmp_path: Path) -> Iterator[Erc8004Deps]:
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3, max_bytes=16 * 1024, ca_file=str(files_host.ca_pem_path),
                              insecure_hosts=frozenset({files_host.host}))  # fmt: skip
        yield Erc8004Deps(
            engine=engine,
            client=RegistryClient(w3=registries.w3, registries=registries.registries),
            files=UriFetcher(fetcher=fetcher, ipfs_gateway=files_host.base_url, max_bytes=16 * 1024),
            payments=None,
        )
        engine.dispose()


def _erc8004_sync(deps: Erc8004Deps, start: int) -> Erc8004Report:
    scanner = FeedbackScanner(client=deps.client, chunk_blocks=1_000)
    return sync_erc8004(deps=deps, scanner=scanner, from_block=start)


def _feedback(deps: Erc8004Deps) -> dict[tuple[int, str, int], Erc8004FeedbackRow]:
    with Session(deps.engine) as s:
        return {(int(r.agent_id), r.client, r.feedback_index): r for r in s.exec(select(Erc8004FeedbackRow))}


@pytest.mark.node  # the test registries are compiled with solc from npm
def test_poison_erc8004_events_are_stored_with_reasons_and_indexing_carries_on(
    registries: Deployed, deps: Erc8004Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    w3 = registries.w3
    owner, client, other = w3.eth.accounts[1], w3.eth.accounts[2], w3.eth.accounts[3]
    key_client, key_other = client.lower(), other.lower()  # how rows key them
    start = w3.eth.block_number + 1
    agent = registries.register(owner=owner, uri=data_uri(registration(services=[
        {"name": "web", "endpoint": "https://agent.example.com/"}])))  # fmt: skip
    nul_agent = registries.register(owner=owner, uri="data:application/json,\x00{}")  # tokenURI with NUL
    registries.give(client=client, agent_id=agent, value=1, uri="http://localhost:%31%38/x")
    registries.give(client=client, agent_id=agent, value=2, tag1="five\x00stars")  # NUL: no database holds it
    registries.give(client=client, agent_id=agent, value=3, uri="https://explodes.example/f.json")
    registries.give(client=other, agent_id=nul_agent, value=4)
    registries.respond(responder=owner, agent_id=agent, client=client, index=1, uri="ipfs://\x00")
    registries.give(client=other, agent_id=agent, value=5)  # the good one, after the poison
    real_fetch = deps.files.fetch

    def fetch(*, uri: str) -> bytes:
        if "explodes" in uri:
            raise RuntimeError("a bug in the fetcher")
        return real_fetch(uri=uri)

    monkeypatch.setattr(deps.files, "fetch", fetch)
    report = _erc8004_sync(deps, start)
    rows = _feedback(deps)
    verdicts = {key: (row.status, row.reason) for key, row in rows.items()}
    assert verdicts[(agent, key_client, 1)] == ("rejected", "fetch-scheme-refused")
    assert verdicts[(agent, key_client, 2)] == ("rejected", "value-not-storable")
    assert rows[(agent, key_client, 2)].tag1 == ""
    assert verdicts[(agent, key_client, 3)] == ("rejected", "judge-failed")
    assert rows[(agent, key_client, 3)].detail == "judging raised RuntimeError"
    assert verdicts[(nul_agent, key_other, 1)] == ("unverified", "no-feedback-file")
    assert verdicts[(agent, key_other, 1)] == ("unverified", "no-feedback-file")  # the good one, indexed
    assert rows[(agent, key_other, 1)].value == "5"
    with Session(deps.engine) as s:
        nul_row = s.get(Erc8004AgentRow, (registries.registries.chain_id, registries.reputation.lower(),
                                          str(nul_agent)))  # fmt: skip
        responses = list(s.exec(select(Erc8004ResponseRow)))
    assert nul_row is not None
    assert (nul_row.status, nul_row.reason, nul_row.token_uri) == ("unmapped", "value-not-storable", "")
    assert [(r.feedback_index, r.response_uri) for r in responses] == [(1, "")]  # kept for audit, URI dropped
    assert report.feedback == 5
    head = w3.eth.block_number
    assert _checkpoint(deps.engine, registries.registries.checkpoint_name) == head
    again = _erc8004_sync(deps, start)
    assert (again.feedback, again.known) == (0, 0)  # resumed after the checkpoint: nothing new
    assert _feedback(deps).keys() == rows.keys()
