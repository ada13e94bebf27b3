"""A scoring-parameter change under a populated store: stored aggregates become stale (other units), and still
every submit and reputation read answers 200 — scores computed exactly from the reviews (flagged by the
``OMATrust-Aggregates: recomputed`` header) until the background rebuild has replaced the aggregates."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.cli.demo_kit import Merchant, Reviewer
from service.dids import normalize_did
from service.scoring import ScoringParams
from service.scoring.params import SECONDS_PER_DAY
from service.wiring import Wired
from service.workflows.score_audit import AggregateRebuilder, any_stale

NEW_PARAMS = ScoringParams(version="v1-halflife-90d", half_life_seconds=90 * SECONDS_PER_DAY)


def _review(client: TestClient, merchant: Merchant, rating: int) -> str:
    reviewer = Reviewer()
    receipt = merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    resp = reviewer.submit(client, subject=merchant.did, ratingValue=rating, proofs=[receipt])
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_parameter_change_keeps_answering_and_rebuilds_aggregates(
    client: TestClient, wired: Wired, merchant: Merchant
) -> None:
    for rating in (5, 4, 2):
        _review(client, merchant, rating)
    rt = wired.runtime
    assert not any_stale(rt=rt)

    rt.params = NEW_PARAMS  # as a deployment with a new half-life would start on the same database
    asked: list[int] = []
    rt.aggregates_stale = lambda: asked.append(1)  # record the requests; the rebuild is run below, on purpose
    assert any_stale(rt=rt)
    path = f"/v1/services/{quote(merchant.did, safe='')}/reputation"

    read = client.get(path)
    assert read.status_code == 200, read.text
    assert read.headers["OMATrust-Aggregates"] == "recomputed"
    assert read.json()["paramsVersion"] == NEW_PARAMS.version
    assert read.json()["counts"]["live"] == 3
    ranked = client.get("/v1/services")
    assert ranked.status_code == 200, ranked.text
    assert ranked.headers["OMATrust-Aggregates"] == "recomputed"
    assert [s["did"] for s in ranked.json()["items"]] == [normalize_did(merchant.did)]

    _review(client, merchant, 1)  # a write meeting stale rows: accepted, aggregates left for the rebuild
    explained = client.get(path, params={"explain": "true"})
    assert explained.status_code == 200, explained.text
    assert explained.headers["OMATrust-Aggregates"] == "recomputed"
    exact = client.get(path)
    assert exact.status_code == 200, exact.text
    assert exact.json()["counts"]["live"] == 4
    assert asked  # every one of those asked for a rebuild
    assert any_stale(rt=rt)

    rebuilder = AggregateRebuilder(rt=rt)
    rebuilder.trigger()
    assert rebuilder.rebuilt.wait(timeout=60)
    assert rebuilder.runs == 1
    assert not any_stale(rt=rt)

    _review(client, merchant, 3)  # aggregates are maintained again on write
    assert not any_stale(rt=rt)
    stored = client.get(path)
    assert stored.status_code == 200, stored.text
    assert stored.headers["OMATrust-Aggregates"] == "stored"
    explained = client.get(path, params={"explain": "true"}).json()
    assert stored.json()["counts"] == explained["counts"]
    assert stored.json()["score"] == pytest.approx(explained["score"], rel=1e-6)
    assert client.get("/v1/services").headers["OMATrust-Aggregates"] == "stored"
