"""API tests run through the real app factory with real parts: a fresh SQLite/PostgreSQL database, the embedded
EVM with EAS, a real HTTPS did:web host and a real DNS server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.chain.embedded import EmbeddedChain, start_embedded_chain
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.wiring import Wired
from tests.support import app_wiring
from tests.support.app_wiring import wired_service
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

# the session-wide loopback did:web and DNS servers (fixtures, shared by tests/api and tests/payments)
didweb = app_wiring.didweb
dns = app_wiring.dns


@pytest.fixture
def chain() -> EmbeddedChain:
    return start_embedded_chain()


@pytest.fixture
def merchant(didweb: DidWebHost) -> Merchant:
    m = Merchant(host=didweb.host)
    didweb.set_document(m.did_document())
    return m


@pytest.fixture
def reviewer() -> Reviewer:
    return Reviewer()


class Clock:
    """Wall-clock time plus an offset tests can move, or a fixed time (``frozen``) for exact score checks."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        return self.frozen if self.frozen is not None else time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wired(tmp_path: Path, chain: EmbeddedChain, didweb: DidWebHost, dns: LoopbackDns, clock: Clock) -> Iterator[Wired]:
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        w = wired_service(engine=engine, chain=chain, didweb=didweb, dns=dns, clock=clock)
        yield w
        w.close()


@pytest.fixture
def client(wired: Wired) -> Iterator[TestClient]:
    app = create_app(Settings(rate_limit_per_minute=1000), wired=wired)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def wait_confirmed(client: TestClient, review_id: str, timeout: float = 20.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = client.get(f"/v1/reviews/{review_id}").json()
        if body["attestation"]["state"] in ("confirmed", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"review {review_id} not published in {timeout}s: {body['attestation']}")
