"""A hostile attestation made directly on EAS (costs only gas) cannot stop chain indexing.

* The poison of the report — a receipt whose ``resourceUrl`` is ``http://localhost:%31%38%35%31%30/w`` (a port
  urllib cannot cast) — is judged, not raised: ``omatrust sync`` (a real process against anvil) exits normally,
  stores the review with that proof ``invalid``, indexes what follows and moves its checkpoint to the head.
* Anything else that raises while one attestation is judged or stored becomes a stored reject with its reason
  (fault injected in-process, since the root cause above is fixed) and the rest of the chunk is stored.
* A crash in the middle of a chunk leaves nothing half-written: the rerun stores each attestation exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlmodel import Session, select

from service.chain.codec import encode_review
from service.chain.deploy import bootstrap
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.indexer import ReviewIndexer
from service.chain.rpc import connect
from service.cli.demo_kit import Merchant
from service.dids import did_address
from service.domain import Review
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import ChainRejectRow, IndexerProgressRow, ProofRow, ReviewRow
from service.workflows import sync as sync_module
from service.workflows.runtime import Runtime
from service.workflows.sync import CHECKPOINT, sync_chain
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url
from tests.support.dns_server import LoopbackDns

pytestmark = pytest.mark.anvil
anvil_node = anvil_fixture()

POISON_HOST = "localhost:%31%38%35%31%30"  # "18510", percent-encoded: urllib's .port raises ValueError on it
SUBJECT = "did:web:shop.example"


@pytest.fixture(scope="module")
def booted(anvil_node: AnvilNode) -> AnvilNode:
    bootstrap(w3=connect(rpc_url=anvil_node.url), eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS,
              payer=Account.from_key(ANVIL_DEV_KEY_0))  # fmt: skip
    return anvil_node


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(tmp_path) as url:
        yield url


class DirectAttester:
    """Someone calling ``EAS.attest`` with their own key and gas: no API, no checks of ours on the way in."""

    def __init__(self, node: AnvilNode) -> None:
        self.account = Account.create()
        node.rpc("anvil_setBalance", [self.account.address, hex(10**20)])
        self.client = EasClient(w3=connect(rpc_url=node.url), eas_address=EAS_ADDRESS, relayer=self.account,
                                poll_interval=0.02)  # fmt: skip

    @property
    def address(self) -> str:
        return str(self.account.address)

    def attest(self, *, proofs: list[dict[str, Any]], rating: int = 4, body: str = "direct") -> str:
        review = Review(subject=SUBJECT, version="", rating_value=rating, review_body=body, screenshot_urls=(),
                        proofs=tuple(json.dumps(p, separators=(",", ":")) for p in proofs))  # fmt: skip
        landed = self.client.attest_direct(data=encode_review(review=review), recipient=did_address(SUBJECT))
        return landed.uid.lower()


def poison_receipt(payer: str) -> dict[str, Any]:
    merchant = Merchant(host=POISON_HOST, scheme="http")
    receipt = merchant.receipt(payer=payer, issued_at=int(time.time()) - 60, path="/w")
    assert receipt["proofObject"]["payload"]["resourceUrl"] == "http://localhost:%31%38%35%31%30/w"
    return receipt


def head(node: AnvilNode) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def run_sync(node: AnvilNode, database_url: str, dns: LoopbackDns, start: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMATRUST_DATABASE_URL": database_url, "OMATRUST_RPC_URL": node.url,
           "OMATRUST_DNS_NAMESERVERS": dns.nameserver, "OMATRUST_DNS_TIMEOUT_SECONDS": "1",
           "OMATRUST_FETCH_TIMEOUT_SECONDS": "2"}  # fmt: skip
    env.pop("OMATRUST_RELAYER_KEY", None)
    return subprocess.run([sys.executable, "-m", "service.cli.main", "sync", "--from", str(start)],
                          capture_output=True, text=True, env=env, timeout=180)  # fmt: skip


def test_poison_attestation_is_judged_and_sync_carries_on(
    booted: AnvilNode, database_url: str, tmp_path: Path
) -> None:
    start = head(booted) + 1
    poisoner, honest = DirectAttester(booted), DirectAttester(booted)
    poison_uid = poisoner.attest(proofs=[poison_receipt(poisoner.address)])
    honest_uid = honest.attest(proofs=[], rating=5)
    last = head(booted)
    with LoopbackDns() as dns:
        first = run_sync(booted, database_url, dns, start)
        assert first.returncode in (0, 3), first.stdout + first.stderr
        assert "Traceback" not in first.stderr
        second = run_sync(booted, database_url, dns, start)
    assert second.returncode in (0, 3), second.stdout + second.stderr
    assert "0 new" in second.stdout

    engine = make_engine(url=database_url)
    try:
        with Session(engine) as s:
            rows = {r.attestation_uid: r for r in s.exec(select(ReviewRow))}
            assert set(rows) == {poison_uid, honest_uid}  # each once, after two runs
            (proof,) = s.exec(select(ProofRow).where(ProofRow.review_id == rows[poison_uid].id)).all()
            assert proof.status == "invalid"  # judged: the URL has no usable host, so nothing binds to it
            assert proof.reason in ("bad-field-value", "subject-mismatch")
            assert rows[poison_uid].verified_purchase is False
            progress = s.get(IndexerProgressRow, CHECKPOINT)
            assert progress is not None
            assert progress.last_block >= last
    finally:
        engine.dispose()


# ---- isolation of any failure (fault injected in-process) ---------------------------------------------------------


@pytest.fixture
def sync_rt(booted: AnvilNode, database_url: str) -> Iterator[Runtime]:
    engine = make_engine(url=database_url)
    upgrade(engine=engine)
    client = EasClient(w3=connect(rpc_url=booted.url), eas_address=EAS_ADDRESS, relayer=None)
    yield Runtime(engine=engine, eas=client, resolver=None, controllers=None)
    engine.dispose()


def _counts(rt: Runtime) -> tuple[dict[str, int], dict[str, str], int | None]:
    with Session(rt.engine) as s:
        reviews: dict[str, int] = {}
        for row in s.exec(select(ReviewRow)):
            assert row.attestation_uid is not None
            reviews[row.attestation_uid] = reviews.get(row.attestation_uid, 0) + 1
        rejects = {r.uid: r.reason for r in s.exec(select(ChainRejectRow))}
        progress = s.get(IndexerProgressRow, CHECKPOINT)
    return reviews, rejects, progress.last_block if progress is not None else None


def test_anything_raised_while_judging_or_storing_becomes_a_reject(
    booted: AnvilNode, sync_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = head(booted) + 1
    a, b, c = DirectAttester(booted), DirectAttester(booted), DirectAttester(booted)
    uid_judge = a.attest(proofs=[], body="explodes while judged")
    uid_store = b.attest(proofs=[], body="explodes while stored")
    uid_fine = c.attest(proofs=[], body="fine")

    real_judge, real_store = sync_module._judge, sync_module._store_one

    def judge(rt: Runtime, found: Any, now: int) -> Any:
        if found.uid.lower() == uid_judge:
            raise RuntimeError("a bug or a hostile input")
        return real_judge(rt, found, now)

    def store(session: Any, *, rt: Runtime, item: Any, now: int, counts: Any) -> None:
        real_store(session, rt=rt, item=item, now=now, counts=counts)
        if item.found.uid.lower() == uid_store and item.reject is None:
            session.flush()
            raise ValueError("the database refused a value")  # after rows were written: the savepoint drops them

    monkeypatch.setattr(sync_module, "_judge", judge)
    monkeypatch.setattr(sync_module, "_store_one", store)
    report = sync_chain(rt=sync_rt, indexer=ReviewIndexer(client=sync_rt.eas), from_block=start)
    reviews, rejects, checkpoint = _counts(sync_rt)
    assert reviews == {uid_fine: 1}
    assert rejects == {uid_judge: "judge-failed", uid_store: "judge-failed"}
    assert checkpoint is not None
    assert checkpoint >= head(booted)
    assert (report.stored, report.rejected) == (1, 2)


def test_crash_mid_chunk_resumes_without_loss_or_duplicates(
    booted: AnvilNode, sync_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = head(booted) + 1
    uids = [DirectAttester(booted).attest(proofs=[], body=f"review {i}") for i in range(3)]
    real_store = sync_module._store_one
    seen: list[str] = []

    def crash_on_second(session: Any, *, rt: Runtime, item: Any, now: int, counts: Any) -> None:
        seen.append(item.found.uid.lower())
        if len(seen) == 2:
            raise KeyboardInterrupt  # the process dies here (not an Exception: nothing may swallow it)
        real_store(session, rt=rt, item=item, now=now, counts=counts)

    monkeypatch.setattr(sync_module, "_store_one", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        sync_chain(rt=sync_rt, indexer=ReviewIndexer(client=sync_rt.eas), from_block=start)
    reviews, rejects, checkpoint = _counts(sync_rt)
    assert (reviews, rejects) == ({}, {})  # the first review of the chunk was not kept alone
    assert checkpoint is None or checkpoint < start

    monkeypatch.setattr(sync_module, "_store_one", real_store)
    sync_chain(rt=sync_rt, indexer=ReviewIndexer(client=sync_rt.eas), from_block=start)
    sync_chain(rt=sync_rt, indexer=ReviewIndexer(client=sync_rt.eas), from_block=start)
    reviews, rejects, checkpoint = _counts(sync_rt)
    assert reviews == dict.fromkeys(uids, 1)
    assert rejects == {}
    assert checkpoint is not None
    assert checkpoint >= head(booted)
