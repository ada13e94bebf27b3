"""Two ``omatrust serve`` processes with their own in-process publishers (no workers) on one PostgreSQL database and
one relayer key: publish rounds are exclusive per key across processes (advisory lock), so no transaction of the key
is wasted on a nonce race (the issue measured 583 transactions for 201 needed, 19 reverted, before this)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import create_engine, text

from bench.submit import domain_of, post_all, presign
from service.chain.rpc import connect
from service.cli.demo_kit import DidWebServer
from tests.chain.anvil_setup import booted_client
from tests.scale.cluster import Cluster, attested_logs, base_env, node_time, served_merchant, wait_for
from tests.support.anvil import AnvilNode

pytestmark = [pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]

RELAYER = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil account 1
REVIEWS = 80


def test_two_serve_processes_never_race_for_the_relayer_nonce(pg_url: str) -> None:
    with DidWebServer(port=0) as server, AnvilNode.start() as node:
        merchant = served_merchant(server)
        booted_client(node)
        cluster = Cluster(env=base_env(
            OMATRUST_DATABASE_URL=pg_url, OMATRUST_RPC_URL=node.url, OMATRUST_RELAYER_KEY=RELAYER,
            OMATRUST_DID_WEB_INSECURE_HOSTS=merchant.host, OMATRUST_RATE_LIMIT_PER_MINUTE="100000",
            OMATRUST_LOOKUP_MAX_PER_HOST="64", OMATRUST_PUBLISH_INTERVAL_SECONDS="0.1",
        ), workdir=Path(tempfile.mkdtemp(prefix="inproc-")))  # fmt: skip
        cluster.upgrade()
        engine = create_engine(pg_url)
        try:
            cluster.start_api()
            cluster.start_api()
            cluster.wait_ready()
            reviews = presign(n=REVIEWS, merchants=[merchant], domain=domain_of(cluster.urls[0]), now=node_time(node))
            _, statuses = asyncio.run(post_all(cluster.urls, [r.body for r in reviews], 8, retries_503=3))
            assert statuses == {201: REVIEWS}

            def confirmed() -> bool:
                query = text("SELECT count(*) FROM outbox WHERE state = 'confirmed'")
                with engine.connect() as conn:
                    return conn.execute(query).scalar() == REVIEWS

            wait_for(confirmed, timeout=180, what="publishing", every=0.3)
            w3 = connect(rpc_url=node.url)
            logs = attested_logs(w3)
            assert len(logs) == REVIEWS
            sent = w3.eth.get_transaction_count(Account.from_key(RELAYER).address)  # type: ignore[arg-type]
            assert sent == len({bytes(x["transactionHash"]) for x in logs})  # every transaction landed and attested
        except BaseException:
            cluster.print_logs()
            raise
        finally:
            engine.dispose()
            cluster.stop()
