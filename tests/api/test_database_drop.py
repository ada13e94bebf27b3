"""A PostgreSQL restart met by a pooled connection in steady use (no ping before each checkout): the request that
meets the dead connection answers 503 ``database-unavailable`` with ``Retry-After`` — nothing was committed — and
the next request works on a fresh connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.chain.embedded import EmbeddedChain
from service.config import Settings
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.wiring import Wired
from tests.api.conftest import Clock
from tests.support.app_wiring import wired_service
from tests.support.db import fresh_postgres_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_client(
    chain: EmbeddedChain, didweb: DidWebHost, dns: LoopbackDns, clock: Clock
) -> Iterator[tuple[TestClient, str]]:
    with fresh_postgres_url(prefix="omatrust_drop") as url:
        engine = make_engine(url=url, idle_ping_seconds=3600.0)  # never pinged: every drop is met by a request
        upgrade(engine=engine)
        full = wired_service(engine=engine, chain=chain, didweb=didweb, dns=dns, clock=clock)
        # no publish loop: its polling would meet the dropped connection first and renew the pool before the request
        wired = Wired(runtime=full.runtime, publisher=None, closers=full.closers)
        try:
            with TestClient(create_app(Settings(), wired=wired), raise_server_exceptions=False) as client:
                yield client, url
        finally:
            wired.close()


def _drop_connections(url: str) -> None:
    database = url.rsplit("/", 1)[1]
    admin = make_engine(url=url.rsplit("/", 1)[0] + "/postgres")
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            pids = (
                conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                    {"d": database},
                )
                .scalars()
                .all()
            )
            for pid in pids:  # waits until each backend has exited
                conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
    finally:
        admin.dispose()


def test_a_dropped_connection_is_503_then_the_next_request_works(pg_client: tuple[TestClient, str]) -> None:
    client, url = pg_client
    missing = "/v1/reviews/" + "0" * 32  # read from the database on every request (no cache in front)
    assert client.get(missing).status_code == 404  # a pooled connection is now open
    _drop_connections(url)
    dropped = client.get(missing)
    assert dropped.status_code == 503, dropped.text
    assert dropped.headers["Retry-After"] == "1"
    assert dropped.headers["content-type"].startswith("application/problem+json")
    assert dropped.json()["code"] == "database-unavailable"
    assert client.get(missing).status_code == 404
