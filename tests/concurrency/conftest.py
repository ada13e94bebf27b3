"""Two real API processes (``omatrust serve``) sharing one database and one anvil node, and an x402 merchant whose
did:web document is served on loopback. Process ``a`` publishes; process ``b`` only accepts (an API replica,
``OMATRUST_PUBLISHER_ENABLED=false``), so every attestation is relayed by one publisher.

The database is the one the test pass selects (``OMATRUST_TEST_DB``): the PostgreSQL pass is what these tests are
for; on SQLite the two processes share one file and its single writer lock.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine

from service.cli.demo_kit import DidWebServer, Merchant
from service.store.engine import make_engine
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, free_port
from tests.support.api_process import OMATRUST, clean_env, serving
from tests.support.db import fresh_database_url, migrated_postgres_engine


@dataclass
class TwoApis:
    bases: tuple[str, str]  # a (publishes), b (replica)
    engine: Engine  # the shared database, for checks the API does not expose
    merchant: Merchant


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoApis]:
    cwd = tmp_path_factory.mktemp("two-apis")
    port = free_port()
    merchant = Merchant(host=f"localhost:{port}", scheme="http")
    with (
        AnvilNode.start() as node,
        DidWebServer(port=port) as didweb,
        fresh_database_url(cwd) as url,
    ):
        didweb.publish(merchant)
        env = clean_env(
            OMATRUST_DATABASE_URL=url,
            OMATRUST_RPC_URL=node.url,
            OMATRUST_RELAYER_KEY=ANVIL_DEV_KEY_0,
            OMATRUST_DID_WEB_INSECURE_HOSTS=f"localhost:{port}",
            OMATRUST_RATE_LIMIT_PER_MINUTE="100000",
            OMATRUST_PUBLISH_INTERVAL_SECONDS="0.1",
        )
        boot = subprocess.run([*OMATRUST, "chain", "bootstrap"], env=env, capture_output=True, text=True, timeout=120)
        assert boot.returncode == 0, boot.stdout + boot.stderr
        # a first (it migrates the fresh database), then the replica.
        with serving(env, cwd, name="api-a") as a:
            replica = {**env, "OMATRUST_PUBLISHER_ENABLED": "false"}
            with serving(replica, cwd, name="api-b") as b:
                engine = make_engine(url=url)
                try:
                    yield TwoApis(bases=(a, b), engine=engine, merchant=merchant)
                finally:
                    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database (the lock-order and hot-row tests)."""
    with migrated_postgres_engine(prefix="omatrust_conc") as engine:
        yield engine
