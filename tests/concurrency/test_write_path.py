"""The write path under concurrent requests through two API processes on one database: one live review per
reviewer and service, one holder per receipt, one review per signed request — and never a 500.

Requests are released together by a barrier and alternate between the two processes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from service.cli.demo_kit import Reviewer
from tests.concurrency.conftest import TwoApis

pytestmark = [pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]

PUBLISH_TIMEOUT = 120.0


def _sign_with_nonce(reviewer: Reviewer, prepared: dict[str, Any], nonce: int) -> dict[str, Any]:
    """The submit body for ``prepared`` signed with an explicit EAS nonce (what a wallet signing ahead does)."""
    typed = prepared["typedData"]
    message = dict(typed["message"])
    original = message["nonce"]
    message["nonce"] = str(nonce) if isinstance(original, str) else nonce
    return reviewer.signed_body({**prepared, "typedData": {**typed, "message": message}})


def _prepare(apis: TwoApis, reviewer: Reviewer, **review: Any) -> dict[str, Any]:
    resp = reviewer.prepare(httpx, base=apis.bases[0], subject=apis.merchant.did, **review)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _submit_together(apis: TwoApis, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once (released by one barrier), alternating between the two processes."""
    barrier = threading.Barrier(len(bodies))

    def post(i: int) -> httpx.Response:
        with httpx.Client(base_url=apis.bases[i % 2], timeout=120) as client:
            barrier.wait(timeout=30)
            return client.post("/v1/reviews", json=bodies[i])

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, range(len(bodies))))


def _codes(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    out: Counter[tuple[int, str]] = Counter()
    for r in responses:
        out[(r.status_code, "" if r.status_code == 201 else r.json().get("code", ""))] += 1
    return out


def _live_reviews(apis: TwoApis, attester: str) -> list[dict[str, Any]]:
    did = quote(apis.merchant.did, safe="")
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{apis.bases[1]}/v1/services/{did}/reviews", params=params, timeout=30).json()
        items += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return [r for r in items if r["attester"] == attester.lower()]


def _accepted_nonces(apis: TwoApis, attester: str) -> list[int]:
    with apis.engine.connect() as conn:
        rows = conn.execute(text("SELECT nonce FROM outbox WHERE attester = :a"), {"a": attester.lower()}).all()
    return sorted(int(r[0]) for r in rows)


def _wait_published(apis: TwoApis, review_ids: list[str]) -> None:
    """Every review lands on chain (the publisher relays them in nonce order): polled with a deadline."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    pending = set(review_ids)
    while pending:
        for rid in sorted(pending):
            state = httpx.get(f"{apis.bases[0]}/v1/reviews/{rid}", timeout=30).json()["attestation"]
            assert state["state"] != "failed", state
            if state["state"] == "confirmed":
                pending.discard(rid)
        assert time.monotonic() < deadline, f"not published within {PUBLISH_TIMEOUT}s: {sorted(pending)}"
        time.sleep(0.2)


def test_concurrent_reviews_of_one_service_by_one_payer_leave_one_live_review(apis: TwoApis) -> None:
    reviewer = Reviewer()
    now = int(time.time())
    bodies = []
    first_nonce = None
    for i in range(20):
        receipt = apis.merchant.receipt(payer=reviewer.address, issued_at=now - 60 - i)
        prepared = _prepare(apis, reviewer, ratingValue=1 + i % 5, reviewBody=f"take {i}", proofs=[receipt])
        nonce = int(prepared["typedData"]["message"]["nonce"])
        first_nonce = nonce if first_nonce is None else first_nonce
        assert nonce == first_nonce  # nothing accepted yet: every prepare sees the same nonce
        # Five nonces, four requests each: some may be accepted in turn, never two with one nonce.
        bodies.append(_sign_with_nonce(reviewer, prepared, nonce + i // 4))
    responses = _submit_together(apis, bodies)

    codes = _codes(responses)
    assert set(codes) <= {(201, ""), (422, "delegation-nonce")}, codes
    accepted = [r.json()["id"] for r in responses if r.status_code == 201]
    assert accepted
    assert len(set(accepted)) == len(accepted)
    assert first_nonce is not None
    assert _accepted_nonces(apis, reviewer.address) == list(range(first_nonce, first_nonce + len(accepted)))
    live = _live_reviews(apis, reviewer.address)
    assert len(live) == 1, live
    assert live[0]["id"] in accepted

    _wait_published(apis, accepted)  # every accepted review (live or superseded) is publishable
    did = quote(apis.merchant.did, safe="")
    for base in apis.bases:
        explained = httpx.get(f"{base}/v1/services/{did}/reputation", params={"explain": "true"}, timeout=60)
        assert explained.status_code == 200, explained.text
        mine = [c for c in explained.json()["contributions"] if c["reviewer"] == reviewer.address.lower()]
        assert sum(not c["superseded"] for c in mine) == 1


def test_concurrent_reviews_reusing_one_receipt_have_one_holder(apis: TwoApis) -> None:
    reviewer = Reviewer()
    receipt = apis.merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    bodies = []
    nonce = None
    for i in range(24):
        prepared = _prepare(apis, reviewer, ratingValue=1 + i % 5, reviewBody=f"again {i}", proofs=[receipt])
        nonce = int(prepared["typedData"]["message"]["nonce"]) if nonce is None else nonce
        bodies.append(_sign_with_nonce(reviewer, prepared, nonce + i // 4))
    responses = _submit_together(apis, bodies)

    codes = _codes(responses)
    assert set(codes) <= {(201, ""), (409, "receipt-replayed"), (422, "delegation-nonce")}, codes
    accepted = [r.json()["id"] for r in responses if r.status_code == 201]
    assert accepted
    nonces = _accepted_nonces(apis, reviewer.address)
    assert len(nonces) == len(set(nonces)) == len(accepted)  # no two accepted reviews share an EAS nonce
    live = _live_reviews(apis, reviewer.address)
    assert len(live) == 1, live
    with apis.engine.connect() as conn:
        claims = conn.execute(
            text("SELECT c.review_id FROM receipt_claims c JOIN proofs p ON p.replay_key = c.replay_key "
                 "WHERE p.review_id = :r"),
            {"r": live[0]["id"]},
        ).all()  # fmt: skip
    assert [c[0] for c in claims] == [live[0]["id"]]  # one holder: the live review
    assert live[0]["verifiedPurchase"] is True
    _wait_published(apis, accepted)


def test_the_same_signed_request_sent_twenty_times_is_one_review(apis: TwoApis) -> None:
    reviewer = Reviewer()
    receipt = apis.merchant.receipt(payer=reviewer.address, issued_at=int(time.time()) - 60)
    prepared = _prepare(apis, reviewer, ratingValue=4, reviewBody="once", proofs=[receipt])
    body = reviewer.signed_body(prepared)
    responses = _submit_together(apis, [body] * 20)

    assert [r.status_code for r in responses] == [201] * 20, _codes(responses)
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    with apis.engine.connect() as conn:
        reviews = conn.execute(text("SELECT COUNT(*) FROM reviews WHERE attester = :a"),
                               {"a": reviewer.address.lower()}).scalar_one()  # fmt: skip
    assert (reviews, len(_accepted_nonces(apis, reviewer.address))) == (1, 1)
    _wait_published(apis, sorted(ids))
