"""The periodic chain-sync job: a review attested on chain by another client (not through the API) is indexed by
an ``omatrust worker`` within a few sync intervals."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.submit import presign
from service.chain.delegation import DelegatedRequest
from service.cli.demo_kit import DidWebServer
from service.dids import did_address
from tests.chain.anvil_setup import booted_client
from tests.scale.cluster import Cluster, base_env, served_merchant, wait_for
from tests.support.anvil import AnvilNode

pytestmark = [pytest.mark.postgres, pytest.mark.anvil]


def test_worker_syncs_reviews_attested_elsewhere(pg_url: str) -> None:
    with DidWebServer(port=0) as server, AnvilNode.start() as node:
        merchant = served_merchant(server)
        client = booted_client(node)
        signed = presign(n=2, merchants=[merchant], domain=client.domain, now=int(time.time()))
        landed = client.submit(requests=[
            DelegatedRequest(attester=s.attester, recipient=did_address(s.review.subject),
                             data=bytes.fromhex(s.body["data"][2:]), deadline=s.body["deadline"], nonce=0,
                             signature=s.body["signature"])
            for s in signed
        ])  # fmt: skip
        cluster = Cluster(env=base_env(
            OMATRUST_DATABASE_URL=pg_url, OMATRUST_RPC_URL=node.url, OMATRUST_DID_WEB_INSECURE_HOSTS=merchant.host,
            OMATRUST_SYNC_INTERVAL_SECONDS="1", OMATRUST_PUBLISH_TICK_SECONDS="30",
        ), workdir=Path(tempfile.mkdtemp(prefix="sync-")))  # fmt: skip
        cluster.upgrade()
        engine = create_engine(pg_url)
        try:
            cluster.start_worker("--queues", "sync,periodic")

            def indexed() -> set[str]:
                query = "SELECT attestation_uid FROM reviews WHERE source = 'chain' AND verified_purchase"
                with engine.connect() as conn:
                    return {r[0] for r in conn.execute(text(query))}

            found = wait_for(lambda: len(indexed()) == 2 and indexed(), timeout=120, what="the sync job", every=0.3)
            assert found == {x.uid.lower() for x in landed}
        except BaseException:
            cluster.print_logs()
            raise
        finally:
            engine.dispose()
            cluster.stop()
