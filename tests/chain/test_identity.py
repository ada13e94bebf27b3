"""Chain identity in-process: GET /v1/attestations/{uid} answers from the chain; the start-up check records the
configured chain, claims pre-identity rows only when their UIDs are on it, and refuses another chain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.chain.embedded import EmbeddedChain, start_embedded_chain
from service.cli.demo_kit import Reviewer
from service.errors import ChainMismatch
from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.tables import ChainRow, ReviewRow
from service.workflows.chain_identity import adopt, check_chain
from service.workflows.runtime import Runtime
from tests.api.conftest import chain, client, clock, didweb, dns, reviewer, wait_confirmed, wired  # noqa: F401
from tests.support.db import fresh_database_url

from .helpers import make_review, sign_request


def test_attestation_route_reads_the_chain(client: TestClient, reviewer: Reviewer, chain: EmbeddedChain) -> None:  # noqa: F811
    posted = reviewer.submit(client, subject="did:web:api.example.com", ratingValue=3, reviewBody="fine")
    assert posted.status_code == 201, posted.text
    uid = wait_confirmed(client, posted.json()["id"])["attestation"]["uid"]
    body = client.get(f"/v1/attestations/{uid}").json()
    assert body["reviewId"] == posted.json()["id"]
    assert body["attester"].lower() == reviewer.address.lower()
    assert body["review"]["ratingValue"] == 3
    assert body["review"]["reviewBody"] == "fine"
    assert body["revoked"] is False
    assert body["chainId"] == chain.w3.eth.chain_id
    # an attestation someone else put on chain: decoded, but not ours
    other = Account.create()
    request, _ = sign_request(chain.client(), other, make_review(2))
    [landed] = chain.client().submit(requests=[request])
    theirs = client.get(f"/v1/attestations/{landed.uid}").json()
    assert theirs["reviewId"] is None
    assert theirs["review"]["subject"] == "did:web:api2.example.com"
    missing = client.get(f"/v1/attestations/0x{'00' * 31}01")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = client.get("/v1/attestations/0x1234")
    assert bad.status_code == 422
    assert bad.json()["code"] == "request-invalid"


def _runtime(url: str, chain: EmbeddedChain) -> Runtime:  # noqa: F811
    engine = make_engine(url=url)
    upgrade(engine=engine)
    return Runtime(engine=engine, eas=chain.client(), resolver=None, controllers=None)


def _legacy_review(uid: str, rid: str) -> ReviewRow:
    now = int(time.time())
    return ReviewRow(id=rid, subject="did:web:a.example", subject_normalized="did:web:a.example",
                     did_address="0x" + "00" * 20, attester="0x" + "aa" * 20, rating_value=4, data_hex="0x",
                     review_time=now, source="chain", created_at=now, attestation_uid=uid)  # fmt: skip


def test_start_check_claims_rows_found_on_chain_and_refuses_others(tmp_path: Path) -> None:
    a = start_embedded_chain()
    request, _ = sign_request(a.client(), Account.create(), make_review(1))
    [landed] = a.client().submit(requests=[request])
    with fresh_database_url(tmp_path) as url:
        rt = _runtime(url, a)
        with session_scope(rt.engine) as s:  # written before identities were recorded
            s.add(_legacy_review(landed.uid, "r1"))
        ref = check_chain(rt=rt, now=int(time.time()))
        with Session(rt.engine) as s:
            assert s.get(ReviewRow, "r1").chain_ref == ref
            row = s.exec(select(ChainRow)).one()
            assert (row.chain_id, row.genesis_hash) == (a.w3.eth.chain_id, a.genesis_hash)
        assert check_chain(rt=rt, now=int(time.time())) == ref  # idempotent

        b = start_embedded_chain()  # same chain id, another genesis
        other = _runtime(url, b)
        with pytest.raises(ChainMismatch) as info:
            check_chain(rt=other, now=int(time.time()))
        message = info.value.detail
        assert a.genesis_hash in message
        assert b.genesis_hash in message
        assert "omatrust chain adopt" in message
        report = adopt(rt=other, now=int(time.time()))
        assert report.withdrawn == 1  # indexed from chain a: nothing to publish on b
        check_chain(rt=other, now=int(time.time()))  # passes now
        with Session(rt.engine) as s:
            gone = s.get(ReviewRow, "r1")
            assert gone.superseded_by == "r1"
            assert gone.attestation_uid is None
        rt.engine.dispose()
        other.engine.dispose()


def test_unlabelled_rows_not_on_the_chain_are_refused(tmp_path: Path) -> None:
    a = start_embedded_chain()
    with fresh_database_url(tmp_path) as url:
        rt = _runtime(url, a)
        with session_scope(rt.engine) as s:
            s.add(_legacy_review("0x" + "ee" * 32, "r1"))
        with pytest.raises(ChainMismatch, match="unrecorded chain"):
            check_chain(rt=rt, now=int(time.time()))
        rt.engine.dispose()
