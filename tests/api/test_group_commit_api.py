"""Group commit through the app: submissions that arrive while a group is being written are stored together, each
caller gets its own answer (201 with its own review, or its own refusal), every review is published, and /metrics
counts the groups. The first group's write is held until the others wait (no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.cli.demo_kit import Reviewer
from service.wiring import Wired
from service.workflows import submit
from tests.api.conftest import wait_confirmed

SUBJECT = "did:web:api.example.com"
TIMEOUT = 30.0


def test_concurrent_submissions_share_a_group_and_each_gets_its_own_answer(
    client: TestClient, wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc = wired.runtime.submissions
    real = submit._store_group
    first_group = threading.Event()

    def held_first(items: Sequence[Any]) -> list[Any]:
        if not first_group.is_set():
            first_group.set()
            assert gc.wait_queued(count=6, timeout=TIMEOUT), "the others never queued behind the first group"
        return real(items)

    monkeypatch.setattr(submit, "_store_group", held_first)
    reviewers = [Reviewer() for _ in range(5)]
    bodies = []
    for k, r in enumerate(reviewers):
        prepared = r.prepare(client, subject=SUBJECT, ratingValue=1 + k % 5, reviewBody=f"review {k}")
        assert prepared.status_code == 200, prepared.text
        bodies.append(r.signed_body(prepared.json()))
    replay = dict(bodies[0])  # the same signed request again: answered with the same review
    # reviewer 1 signs a second review with the nonce its first one uses: both pass the checks before the store
    # (neither is stored yet); in the store the second is refused, alone
    prepared = reviewers[1].prepare(client, subject="did:web:other.example.com", ratingValue=3)
    same_nonce = reviewers[1].signed_body(prepared.json())
    before = gc.stats()

    with ThreadPoolExecutor(max_workers=8) as pool:
        leader = pool.submit(client.post, "/v1/reviews", json=bodies[1])
        assert first_group.wait(TIMEOUT)
        queued = (bodies[0], *bodies[2:], replay, same_nonce)
        others = [pool.submit(client.post, "/v1/reviews", json=b) for b in queued]
        answers = [leader.result(TIMEOUT), *(f.result(TIMEOUT) for f in others)]
    refused = answers.pop()
    assert (refused.status_code, refused.json()["code"]) == (422, "delegation-nonce"), refused.text
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    assert ids[1] == ids[-1]  # the repeated request: the first one's review
    assert len(set(ids)) == 5
    assert {a.json()["attester"] for a in answers} == {r.address.lower() for r in reviewers}
    after = gc.stats()
    assert (after.groups - before.groups, after.items - before.items) == (2, 7)  # the held one, then six together
    assert after.largest == 6
    metrics = client.get("/metrics").text
    assert 'omatrust_submit_groups{what="largest"} 6.0' in metrics
    assert 'omatrust_submit_groups{what="submissions"} 7.0' in metrics
    for review_id in set(ids):
        assert wait_confirmed(client, review_id)["attestation"]["state"] == "confirmed"
