"""Publishing batches: a claim is packed into transactions filled up to the 2^24 gas cap (a trailing partial one is
held back while more may be waiting), and a woken publish job lingers so reviews submitted close together share a
transaction — counted through the real app, the SQL outbox and the embedded chain, with the linger driven by the
test (no sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.chain.calls import GAS_CAP, gas_for
from service.chain.delegation import DelegatedRequest
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EmbeddedChain
from service.chain.outbox import InMemoryOutbox
from service.chain.publisher import Publisher
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.wiring import Wired
from service.workflows.evaluate import ReviewPolicy
from service.workflows.publish import PublishLoop
from service.workflows.runtime import Runtime
from tests.api.conftest import Clock, chain, clock, didweb, dns, merchant  # noqa: F401 - fixtures
from tests.chain.helpers import make_review, sign_request
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


def _wait(condition, *, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` (a state check, not a timing assumption) until true."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.05)


SUBJECT = "did:web:api.example.com"


def test_a_claim_fills_transactions_up_to_the_gas_cap(chain: EmbeddedChain) -> None:  # noqa: F811
    client: EasClient = chain.client()

    def signed() -> DelegatedRequest:
        return sign_request(client, Account.create(), make_review(1, body="Good.", subject=SUBJECT))[0]

    size = len(signed().data)  # every request below has this size
    per_tx = max(k for k in range(1, 200) if gas_for(data_lengths=[size] * k) <= GAS_CAP)
    requests = [signed() for _ in range(2 * per_tx + 4)]
    assert len(client.plan(requests=requests[:per_tx])) == 1

    outbox = InMemoryOutbox()
    ids = [outbox.enqueue(request=r, key=client.content_key(request=r)) for r in requests[: per_tx + 3]]
    publisher = Publisher(client=client, outbox=outbox, batch_size=per_tx + 3)
    first = publisher.run_once()
    # one full transaction; the 3 that would have made a second, mostly empty one wait for company
    assert (first.transactions, first.confirmed) == (1, per_tx)
    assert [outbox.record(item_id=i).state for i in ids[per_tx:]] == ["pending"] * 3

    more = [outbox.enqueue(request=r, key=client.content_key(request=r)) for r in requests[per_tx + 3 : 2 * per_tx]]
    second = publisher.run_once()
    assert (second.transactions, second.confirmed) == (1, per_tx)  # the 3 held back + what came after: full again
    records = [outbox.record(item_id=i) for i in ids + more]
    assert {r.state for r in records} == {"confirmed"}
    assert len({r.item.tx_hash for r in records}) == 2

    # the end of the queue is not held back: a claim that got fewer items than it asked for sends them all
    tail = [outbox.enqueue(request=r, key=client.content_key(request=r)) for r in requests[2 * per_tx :]]
    last = publisher.run_once()
    assert (last.transactions, last.confirmed) == (1, len(tail))


@pytest.fixture
def lingering(
    tmp_path: Path, chain: EmbeddedChain, didweb: DidWebHost, dns: LoopbackDns, clock: Clock  # noqa: F811
) -> Iterator[tuple[TestClient, PublishLoop, Runtime, threading.Event, list[float]]]:
    """The app with its in-process jobs running, whose publish jobs linger until the test opens ``gate``."""
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3.0, insecure_hosts=frozenset({didweb.host}), ca_file=didweb.ca_pem_path)
        rt = Runtime(engine=engine, eas=chain.client(), resolver=DidResolver(fetcher=fetcher, ttl=0),
                     controllers=ControllerResolver(nameservers=(dns.nameserver,), timeout=1.0),
                     policy=ReviewPolicy(receipt_max_age=7 * 24 * 3600, clock_skew=300), clock=clock)  # fmt: skip
        loop = PublishLoop(rt=rt, interval=3600.0, linger=0.15)
        gate, lingered = threading.Event(), []

        def pause(seconds: float) -> None:  # the job's clock: the linger lasts until the test says so
            lingered.append(seconds)
            assert gate.wait(30), "the test never opened the gate"

        loop.ctx.pause = pause
        rt.publisher_wakeup = loop.wakeup
        wired = Wired(runtime=rt, publisher=loop, closers=[engine.dispose])
        app = create_app(Settings(rate_limit_per_minute=1000), wired=wired)
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                yield client, loop, rt, gate, lingered
        finally:
            gate.set()
            wired.close()


def test_reviews_submitted_together_share_a_transaction(
    lingering: tuple[TestClient, PublishLoop, Runtime, threading.Event, list[float]],
    merchant: Merchant,  # noqa: F811
) -> None:
    client, _loop, rt, gate, lingered = lingering
    n = 6
    now = int(time.time())
    ids = []
    for _ in range(n):  # each submission wakes the publisher
        reviewer = Reviewer()
        response = reviewer.submit(client, subject=merchant.did, ratingValue=4,
                                   proofs=[merchant.receipt(payer=reviewer.address, issued_at=now - 60)])  # fmt: skip
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    _wait(lambda: bool(lingered), timeout=30, what="a publish job to start lingering")
    assert lingered[0] == 0.15
    with rt.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar() == n
    gate.set()

    def published() -> bool:
        with rt.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'confirmed'")).scalar() == n

    _wait(published, timeout=60, what="the reviews to be confirmed")
    with rt.engine.connect() as conn:
        hashes = {h for (h,) in conn.execute(text("SELECT tx_hash FROM outbox"))}
    assert len(hashes) == 1 < n  # one transaction for the six, not one each
    for review_id in ids:
        assert client.get(f"/v1/reviews/{review_id}").json()["attestation"]["state"] == "confirmed"
