"""``omatrust reverify --distribute 4`` on 2 workers gives the report of a single-process run over the same data
(verdict transitions and outcome-history rows equal), with one worker SIGKILLed in the middle of a partition.

The same seeded store is cloned (``CREATE DATABASE … TEMPLATE``) so both runs see identical rows and ids. Size:
``OMATRUST_SCALE_REVERIFY_REVIEWS`` (default 3,000 for CI; the issue's run is 200,000, also ``python -m
bench.reverify`` for throughput).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.reverify import seed
from service.cli.demo_kit import DidWebServer, Merchant
from tests.chain.anvil_setup import booted_client
from tests.scale.cluster import PYTHON, Cluster, Proc, base_env, served_merchant, wait_for
from tests.support.anvil import AnvilNode
from tests.support.db import PG_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]

REVIEWS = int(os.environ.get("OMATRUST_SCALE_REVERIFY_REVIEWS", "3000"))
HISTORY = ("SELECT review_id, proof_id, before_status, after_status, before_reason, after_reason FROM outcome_history "
           "ORDER BY proof_id")  # fmt: skip


def _admin_exec(sql: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


@pytest.fixture
def stores() -> Iterator[tuple[str, str, list[Merchant]]]:
    """Two identical stores (single-process run, distributed run) and the merchants whose documents they use."""
    names = [f"omatrust_rv_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    with ExitStack() as stack:
        servers = [stack.enter_context(DidWebServer(port=0)) for _ in range(4)]
        merchants = []
        for server in servers:
            merchants.append(served_merchant(server))
        documents = [s.documents["/.well-known/did.json"] for s in servers]
        _admin_exec(f'CREATE DATABASE "{names[0]}"')
        try:
            seed(url=f"{base}/{names[0]}", merchants=merchants, documents=documents, eip712=REVIEWS - REVIEWS // 10,
                 jws=REVIEWS // 10, now=_now())  # fmt: skip
            engine = create_engine(f"{base}/{names[0]}")
            with engine.begin() as conn:  # stored verdicts that re-verification will change (history rows)
                conn.execute(text("UPDATE proofs SET status = 'unauthorized', tier = NULL WHERE id % 7 = 0"))
                conn.execute(text("UPDATE proofs SET status = 'invalid', reason = 'signature-invalid' "
                                  "WHERE id % 11 = 0"))  # fmt: skip
            engine.dispose()
            _admin_exec(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"')
            yield f"{base}/{names[0]}", f"{base}/{names[1]}", merchants
        finally:
            for name in names:
                _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _now() -> int:
    import time

    return int(time.time())


def _history(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(HISTORY))]
    engine.dispose()
    return rows


def test_distributed_reverify_equals_single_process(stores: tuple[str, str, list[Merchant]]) -> None:
    single_url, distributed_url, merchants = stores
    workdir = Path(tempfile.mkdtemp(prefix="reverify-"))
    insecure = ",".join(m.host for m in merchants)
    single = subprocess.run(
        [*PYTHON, "reverify", "--workers", "0", "--chunk-size", "200", "--json", str(workdir / "single.json")],
        env=base_env(OMATRUST_DATABASE_URL=single_url, OMATRUST_DID_WEB_INSECURE_HOSTS=insecure),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    single_report = json.loads((workdir / "single.json").read_text())

    with AnvilNode.start() as node:
        booted_client(node)
        env = base_env(OMATRUST_DATABASE_URL=distributed_url, OMATRUST_DID_WEB_INSECURE_HOSTS=insecure,
                       OMATRUST_RPC_URL=node.url, OMATRUST_WORKER_HEARTBEAT_SECONDS="0.5",
                       OMATRUST_WORKER_STALLED_SECONDS="3", OMATRUST_SYNC_INTERVAL_SECONDS="0")  # fmt: skip
        cluster = Cluster(env=env, workdir=workdir)
        cluster.upgrade()
        cli = None
        try:
            cluster.start_worker("--queues", "reverify,periodic")
            cluster.start_worker("--queues", "reverify,periodic")
            with open(workdir / "distribute.log", "wb") as out:
                cli = subprocess.Popen([*PYTHON, "reverify", "--distribute", "4", "--chunk-size", "50", "--json",
                                        str(workdir / "distributed.json")], env=env, stdout=out,
                                       stderr=subprocess.STDOUT)  # fmt: skip

            def busy_worker() -> object:
                engine = create_engine(distributed_url)
                with engine.connect() as conn:
                    started = conn.execute(text(
                        "SELECT count(*) FROM reverify_runs WHERE state = 'running' AND reviews_checked > 0"
                    )).scalar()  # fmt: skip
                engine.dispose()
                return started and cluster.running("reverify")

            victim: Proc = wait_for(busy_worker, timeout=180, what="a worker in the middle of a partition", every=0.02)
            victim.popen.send_signal(signal.SIGKILL)
            victim.popen.wait(10)
            cluster.start_worker("--queues", "reverify,periodic")
            assert cli.wait(600) == 0, (workdir / "distribute.log").read_text()[-3000:]
            # the killed worker's partition job was handed to another worker (and resumed its run)
            assert any("of a stalled worker handed back" in p.text() for p in cluster.workers)
        except BaseException:
            cluster.print_logs()
            raise
        finally:
            if cli is not None and cli.poll() is None:
                cli.kill()
                cli.wait(10)
            cluster.stop()

    distributed_report = json.loads((workdir / "distributed.json").read_text())
    assert distributed_report["transitions"] == single_report["transitions"]
    assert distributed_report["reviewsChecked"] == single_report["reviewsChecked"] == REVIEWS
    single_history, distributed_history = _history(single_url), _history(distributed_url)
    assert distributed_report["historyRows"] == len(distributed_history) == len(single_history) > 0
    assert distributed_history == single_history
