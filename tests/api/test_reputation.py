"""GET /v1/services/{did}/reputation and GET /v1/services through the real app: reviews submitted through the real
flow (receipts verified against a did:web host on loopback, attestations on the embedded chain), or — for larger
histories — written through the store + apply_review_change. Expected numbers come from the documented formulas
(re-derived in tests/api/test_reputation_store.py), docs/scoring.md's table and an independent Beta quadrature."""

from __future__ import annotations

import math
import time
from urllib.parse import quote

from fastapi.testclient import TestClient

from service.cli.demo_kit import Merchant, Reviewer
from service.dids import normalize_did
from service.wiring import Wired
from tests.api.conftest import Clock, wait_confirmed
from tests.api.test_reputation_store import Inserted, close, insert_review, reference_prior, reference_score
from tests.scoring.reference import beta_quantile_reference

SCORE_FIELDS = {
    "did", "paramsVersion", "asOf", "priorMean", "score", "lower90", "confidence", "effectiveEvidence",
    "verifiedWeight", "unverifiedWeight", "unverifiedCapScale", "verifiedShare", "counts", "histogram",
    "lastReviewAt", "topReviewerShare", "reviewerDominates", "topMovers", "explained", "contributions",
    "contributionsOmitted", "paymentBackedWeight", "topPayerShare", "erc8004",
}  # fmt: skip


def path(did: str) -> str:
    return f"/v1/services/{quote(did, safe='')}/reputation"


def test_unknown_service_gets_the_prior_only_score(client: TestClient) -> None:
    resp = client.get(path("did:web:never-reviewed.example"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == SCORE_FIELDS
    assert body["did"] == "did:web:never-reviewed.example"
    assert body["counts"] == {"total": 0, "live": 0, "verified": 0, "unverified": 0, "superseded": 0}
    assert body["histogram"] == {"verified": [0] * 5, "unverified": [0] * 5}
    assert (body["confidence"], body["effectiveEvidence"], body["verifiedShare"]) == (0.0, 0.0, None)
    assert (body["lastReviewAt"], body["topReviewerShare"], body["reviewerDominates"]) == (None, None, False)
    assert body["topMovers"] == []
    assert (body["explained"], body["contributions"]) == (False, None)
    # docs/scoring.md worked example 1 (no reviews, μ₀ = 0.7 fallback): 70.00 / 40.05.
    assert body["priorMean"] == 0.7
    assert round(body["score"], 2) == 70.00
    assert round(body["lower90"], 2) == 40.05
    assert body["paramsVersion"] == "v2"
    ranking = client.get("/v1/services").json()
    assert (ranking["total"], ranking["items"], ranking["nextCursor"], ranking["sort"]) == (0, [], None, "lower90")


def test_reputation_of_reviews_submitted_through_the_api(
    client: TestClient, merchant: Merchant, wired: Wired
) -> None:
    now = int(time.time())
    plan = [(5, "eip712"), (4, "jws"), (5, "eip712"), (1, None), (2, None)]
    ids: list[str] = []
    reviewers = [Reviewer() for _ in plan]
    for (rating, fmt), who in zip(plan, reviewers, strict=True):
        proofs = [merchant.receipt(payer=who.address, issued_at=now - 60, fmt=fmt)] if fmt else []
        resp = who.submit(client, subject=merchant.did, ratingValue=rating, proofs=proofs)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    # The 1★ no-proof reviewer changes their mind: their earlier review is superseded.
    again = reviewers[3].submit(client, subject=merchant.did, ratingValue=3)
    assert again.status_code == 201, again.text
    ids.append(again.json()["id"])
    reviews = {rid: wait_confirmed(client, rid) for rid in ids}
    assert all(r["attestation"]["state"] == "confirmed" for r in reviews.values())

    body = client.get(path(merchant.did)).json()
    # The same DID typed with a bare port colon reads the same subject.
    bare = client.get(f"/v1/services/{merchant.did.replace('%3A', ':')}/reputation").json()
    assert bare["did"] == body["did"] == normalize_did(merchant.did)  # host lower-cased, %3A → %3a
    assert bare["counts"] == body["counts"]

    assert body["counts"] == {"total": 6, "live": 5, "verified": 3, "unverified": 2, "superseded": 1}
    assert body["histogram"] == {"verified": [0, 0, 0, 1, 2], "unverified": [0, 1, 1, 0, 0]}
    history = [
        Inserted(rid, normalize_did(merchant.did), r["attester"], r["ratingValue"], r["reviewTime"], r["evidence"],
                 client.get(f"/v1/reviews/{rid}").json()["supersededBy"])
        for rid, r in reviews.items()
    ]  # fmt: skip
    prior = reference_prior(history)
    ref = reference_score(history, subject=normalize_did(merchant.did), prior=prior, now=body["asOf"])
    assert close(body["priorMean"], prior)
    assert close(body["score"], ref["score"])
    assert close(body["confidence"], ref["confidence"])
    assert close(body["effectiveEvidence"], ref["effectiveEvidence"])
    assert body["lastReviewAt"] == max(r["reviewTime"] for r in reviews.values())
    assert 0 < body["lower90"] < body["score"]
    # Top movers: live reviews only, by |contribution|, carrying their attestation UIDs.
    movers = body["topMovers"]
    live = {rid for rid, r in reviews.items() if client.get(f"/v1/reviews/{rid}").json()["supersededBy"] is None}
    assert {m["reviewId"] for m in movers} <= live
    assert len(movers) == 5
    assert [abs(m["contribution"]) for m in movers] == sorted((abs(m["contribution"]) for m in movers), reverse=True)
    for m in movers:
        assert m["attestationUid"] == reviews[m["reviewId"]]["attestation"]["uid"]
        assert m["evidence"] == reviews[m["reviewId"]]["evidence"]
    # Five reviewers each with one live review: nobody dominates; the top share is the largest weight / n.
    assert body["reviewerDominates"] is False
    assert close(body["topReviewerShare"], max(m["weight"] for m in movers) / body["effectiveEvidence"])

    explained = client.get(path(merchant.did), params={"explain": "true"}).json()
    assert explained["explained"] is True
    parts = explained["contributions"]
    assert {c["reviewId"] for c in parts} == set(ids)
    dead = [c for c in parts if c["superseded"]]
    assert [c["reviewId"] for c in dead] == [ids[3]]
    assert dead[0]["weight"] == 0.0
    assert dead[0]["contribution"] == 0.0
    # Contributions add up to the distance from the prior (docs/scoring.md, "Contributions").
    assert math.isclose(sum(c["contribution"] for c in parts), explained["score"] - 100 * explained["priorMean"],
                        abs_tol=1e-9)  # fmt: skip
    # Two requests a moment apart: decay moves values by ~1e-7 per second.
    for key in ("score", "lower90", "confidence", "effectiveEvidence", "verifiedShare", "topReviewerShare"):
        assert close(explained[key], body[key], 1e-6), key
    assert explained["counts"] == body["counts"]
    assert [m["reviewId"] for m in explained["topMovers"]] == [m["reviewId"] for m in movers]


def test_ranking_prefers_a_long_verified_record_by_lower90(client: TestClient, wired: Wired, clock: Clock) -> None:
    engine = wired.runtime.engine
    now = int(time.time())
    clock.frozen = now  # the reference below has no decay: score at the reviews' own time, however slow the run
    a, b, c, d = (f"did:web:{x}.rank.example" for x in "abcd")
    n = 0

    def add(subject: str, rating: int, evidence: str, count: int) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            insert_review(engine, rid=f"k{n:04d}", subject=subject, attester=f"0x{n:040x}", rating=rating, time=now,
                          evidence=evidence)  # fmt: skip

    add(a, 5, "verified", 40)
    add(a, 4, "verified", 40)
    add(b, 5, "verified", 2)
    add(c, 5, "verified", 1)
    add(c, 1, "none", 10)
    add(d, 5, "none", 5)
    # Independent check of the A/B inversion: B's mean is higher, A's 10th percentile is higher.
    mu = (40 + 30 + 2 + 1) / 83
    for subject, alpha, beta in ((a, 4 * mu + 70, 4 * (1 - mu) + 10), (b, 4 * mu + 2, 4 * (1 - mu))):
        rep = client.get(path(subject)).json()
        assert math.isclose(rep["score"], 100 * alpha / (alpha + beta), rel_tol=1e-6)
        assert math.isclose(rep["lower90"], 100 * beta_quantile_reference(a=alpha, b=beta, p=0.1), abs_tol=1e-6)

    values = {s: client.get(path(s)).json() for s in (a, b, c, d)}
    by_lower = client.get("/v1/services", params={"sort": "lower90"}).json()
    assert [i["did"] for i in by_lower["items"]][:2] == [a, b]
    assert [i["did"] for i in by_lower["items"]] == sorted(values, key=lambda s: -values[s]["lower90"])
    by_score = client.get("/v1/services", params={"sort": "score"}).json()
    assert [i["did"] for i in by_score["items"]] == sorted(values, key=lambda s: -values[s]["score"])
    order = [i["did"] for i in by_score["items"]]
    assert order[0] == b
    assert order.index(b) < order.index(a)
    by_reviews = client.get("/v1/services", params={"sort": "reviews"}).json()
    assert [i["did"] for i in by_reviews["items"]] == [a, c, d, b]
    assert by_lower["total"] == 4
    for item in by_lower["items"]:
        full = values[item["did"]]
        assert (item["counts"], item["lastReviewAt"]) == (full["counts"], full["lastReviewAt"])
        # Same aggregate; the ranking snapshot may be a second older (decay moves scores by ~1e-7 per second).
        for key in ("score", "lower90", "confidence", "effectiveEvidence", "verifiedShare"):
            assert close(item[key], full[key], 1e-6), key

    # Keyset pages of 1 walk the same order exactly once.
    seen: list[str] = []
    cursor = None
    while True:
        params = {"sort": "lower90", "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/services", params=params).json()
        seen += [i["did"] for i in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [i["did"] for i in by_lower["items"]]

    # A new review invalidates the cached ranking at once.
    add(b, 5, "verified", 100)
    assert client.get("/v1/services", params={"sort": "reviews"}).json()["items"][0]["did"] == b


def test_bad_inputs_are_problems_not_errors(client: TestClient) -> None:
    for url, params in (
        ("/v1/services/not-a-did/reputation", {}),
        (path("did:web:x.example"), {"explain": "maybe"}),
        ("/v1/services", {"sort": "name"}),
        ("/v1/services", {"limit": "0"}),
        ("/v1/services", {"limit": "101"}),
        ("/v1/services", {"cursor": "not-a-cursor"}),
        ("/v1/services", {"cursor": "WyJzY29yZSIsMSwiYSJd"}),  # a well-formed cursor, but for sort=score
    ):
        resp = client.get(url, params=params)
        assert resp.status_code == 422, (url, params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")


def test_openapi_documents_the_reputation_shapes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/services/{did}/reputation"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    props = spec["components"]["schemas"][ref]["properties"]
    assert set(props) == SCORE_FIELDS
    assert "/v1/services" in spec["paths"]
    assert "/services/{did}" not in spec["paths"]  # the HTML page is not part of the API


def test_explain_lists_at_most_1000_contributions_largest_first(client: TestClient, wired: Wired) -> None:
    from service.store.tables import ReviewRow
    from service.workflows.reputation import DbContext
    from service.workflows.score_audit import recompute

    subject, now = "did:web:many.example", int(time.time())
    rows = [
        {"id": f"m{i:05d}", "subject": subject, "subject_normalized": subject, "did_address": "0x" + "00" * 20,
         "attester": f"0x{i:040x}", "version": "", "rating_value": 1 + i % 5, "review_body": "", "screenshot_urls": [],
         "proofs_json": [], "data_hex": "0x", "review_time": now - 3600 * i, "source": "chain",
         "verified_purchase": i % 3 == 0, "evidence": "verified" if i % 3 == 0 else "none", "superseded_by": None,
         "attestation_uid": None, "created_at": now}
        for i in range(1003)
    ]  # fmt: skip
    with wired.runtime.engine.begin() as conn:
        conn.execute(ReviewRow.__table__.insert(), rows)  # type: ignore[attr-defined]
    recompute(rt=DbContext(engine=wired.runtime.engine), did=subject)
    body = client.get(path(subject), params={"explain": "true"}).json()
    assert body["counts"]["live"] == 1003
    assert (len(body["contributions"]), body["contributionsOmitted"]) == (1000, 3)
    sizes = [abs(c["contribution"]) for c in body["contributions"]]
    assert sizes == sorted(sizes, reverse=True)
    assert [m["reviewId"] for m in body["topMovers"]] == [c["reviewId"] for c in body["contributions"][:5]]
