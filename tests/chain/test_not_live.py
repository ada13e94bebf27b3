"""A review whose attestation cannot land is not live: it counts in no score, holds no receipt, supersedes nothing,
and shows as failed with its reason — through the real app, SQL outbox, embedded chain and did:web host."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.chain.embedded import EmbeddedChain
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine, session_scope
from service.store.migrate import upgrade
from service.store.reviews import receipt_holder
from service.wiring import Wired
from service.workflows.evaluate import ReviewPolicy
from service.workflows.publish import PublishLoop
from service.workflows.runtime import Runtime
from tests.api.conftest import Clock, chain, clock, didweb, dns, merchant, reviewer  # noqa: F401 - fixtures
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


@pytest.fixture
def paused(
    tmp_path: Path, chain: EmbeddedChain, didweb: DidWebHost, dns: LoopbackDns, clock: Clock  # noqa: F811
) -> Iterator[tuple[TestClient, PublishLoop, Runtime]]:
    """The app with its publisher not running: the test drains it when it wants."""
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3.0, insecure_hosts=frozenset({didweb.host}), ca_file=didweb.ca_pem_path)
        rt = Runtime(engine=engine, eas=chain.client(), resolver=DidResolver(fetcher=fetcher, ttl=0),
                     controllers=ControllerResolver(nameservers=(dns.nameserver,), timeout=1.0),
                     policy=ReviewPolicy(receipt_max_age=7 * 24 * 3600, clock_skew=300), clock=clock)  # fmt: skip
        loop = PublishLoop(rt=rt, batch_size=10, interval=0.05)
        wired = Wired(runtime=rt, publisher=None, closers=[engine.dispose])
        app = create_app(Settings(rate_limit_per_minute=1000), wired=wired)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, loop, rt
        wired.close()


def test_expired_publication_is_withdrawn(
    paused: tuple[TestClient, PublishLoop, Runtime], merchant: Merchant, reviewer: Reviewer,  # noqa: F811
    clock: Clock,  # noqa: F811
) -> None:  # fmt: skip
    client, loop, rt = paused
    did_path = merchant.did.replace("%", "%25")
    now = int(time.time())
    first = reviewer.submit(client, subject=merchant.did, ratingValue=5, proofs=[
        merchant.receipt(payer=reviewer.address, issued_at=now - 60)])  # fmt: skip
    assert first.status_code == 201, first.text
    assert loop.drain().confirmed == 1
    receipt = merchant.receipt(payer=reviewer.address, issued_at=now - 30)
    second = reviewer.submit(client, subject=merchant.did, ratingValue=1, deadline=now + 60, proofs=[receipt])
    assert second.status_code == 201, second.text
    a, b = first.json()["id"], second.json()["id"]
    assert client.get(f"/v1/reviews/{a}").json()["supersededBy"] == b
    key = second.json()["proofs"][0]["replayKey"]
    with session_scope(rt.engine) as s:
        assert receipt_holder(s, replay_key=key) == b
    live_before = client.get(f"/v1/services/{did_path}/reputation?explain=true").json()  # explain: never cached

    clock.offset = 600  # the publisher gets to it after its deadline: it can never land
    report = loop.drain()
    assert report.failed == 1
    failed = client.get(f"/v1/reviews/{b}").json()
    assert failed["attestation"]["state"] == "failed"
    assert failed["attestation"]["error"].startswith("delegation-expired")
    # supersedes nothing: the first review is live again and the only one listed
    assert client.get(f"/v1/reviews/{a}").json()["supersededBy"] is None
    listed = client.get(f"/v1/services/{did_path}/reviews").json()["items"]
    assert [r["id"] for r in listed] == [a]
    # holds no receipt
    with session_scope(rt.engine) as s:
        assert receipt_holder(s, replay_key=key) is None
    # counts in no score: the score is the one of the first review alone
    rep = client.get(f"/v1/services/{did_path}/reputation?explain=true").json()
    assert rep["counts"]["live"] == 1
    assert rep["score"] > live_before["score"]  # the 1-star review no longer pulls it down
    histogram = rep["histogram"]["verified"]
    assert histogram[4] == 1
    assert histogram[0] == 0
