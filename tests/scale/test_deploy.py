"""docs/compose.yaml brought up without Docker: the same ``omatrust`` commands and environment, run as local
processes against a fresh PostgreSQL database, a fresh anvil node and the local Redis (each service's host names
replaced by loopback, its listen address by 127.0.0.1 and a free port). Reviews posted to both API processes are
published by the workers with both relayer keys; the per-attester rate limit is shared through Redis."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eth_account import Account
from sqlalchemy import create_engine, text

from bench.submit import domain_of, post_all, presign
from service.chain.rpc import connect
from service.cli.demo_kit import DidWebServer
from service.store.jobqueue import relayer_slot
from tests.scale.cluster import Cluster, attested_logs, base_env, node_time, served_merchant, wait_for
from tests.support.anvil import AnvilNode, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]

COMPOSE = Path(__file__).resolve().parents[2] / "docs" / "compose.yaml"


def _local(command: list[str]) -> list[str]:
    """A service command with its listen address on loopback and a free port."""
    out = list(command)
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(free_port()))):
        if flag in out:
            out[out.index(flag) + 1] = value
    return out


def test_compose_stack_as_processes(pg_url: str) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, Any] = compose["services"]
    server = DidWebServer(port=0)
    server.thread.start()
    merchant = served_merchant(server)
    with AnvilNode.start() as node:
        env = base_env(**{k: str(v) for k, v in services["api1"]["environment"].items()})
        env.update(OMATRUST_DATABASE_URL=pg_url, OMATRUST_RPC_URL=node.url, OMATRUST_REDIS_URL="redis://127.0.0.1:6379/0",
                   OMATRUST_DID_WEB_INSECURE_HOSTS=merchant.host)  # fmt: skip
        cluster = Cluster(env=env, workdir=Path(tempfile.mkdtemp(prefix="deploy-")))
        try:
            for one_shot in ("migrate", "bootstrap"):  # run to completion first, as depends_on says
                proc = cluster._spawn(one_shot, services[one_shot]["command"])
                assert proc.popen.wait(180) == 0, proc.text()
            for name in ("api1", "api2"):
                assert services[name]["command"][0] == "serve"
                port_args = _local(services[name]["command"])
                port = port_args[port_args.index("--port") + 1]
                cluster.apis.append(cluster._spawn(name, port_args))
                cluster.urls.append(f"http://127.0.0.1:{port}")
            for _ in range(services["worker"]["deploy"]["replicas"]):
                cluster.workers.append(cluster._spawn(f"worker{len(cluster.workers)}", services["worker"]["command"]))
            cluster.wait_ready()
            assert len(cluster.apis) == 2
            assert len(cluster.workers) == 2

            reviews = presign(n=24, merchants=[merchant], domain=domain_of(cluster.urls[0]), now=node_time(node))
            _, statuses = asyncio.run(post_all(cluster.urls, [r.body for r in reviews], 8, retries_503=3))
            assert statuses == {201: len(reviews)}
            engine = create_engine(pg_url)

            def drained() -> bool:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM outbox WHERE state = 'confirmed'")).scalar() == 24

            wait_for(drained, timeout=120, what="publishing", every=0.3)
            engine.dispose()
            w3 = connect(rpc_url=node.url)
            logs = attested_logs(w3)
            assert len({bytes(x["data"])[:32] for x in logs}) == len(logs) == len(reviews)
            keys = env["OMATRUST_RELAYER_KEYS"].split(",")
            senders = Counter(w3.eth.get_transaction(x["transactionHash"])["from"] for x in logs)
            wanted = {Account.from_key(keys[relayer_slot(attester=r.attester.lower(), relayers=len(keys))]).address
                      for r in reviews}  # fmt: skip
            assert set(senders) == wanted

            # One attester's budget (RATE_LIMIT_PER_MINUTE) is shared by both API processes through Redis.
            limit = int(env["OMATRUST_RATE_LIMIT_PER_MINUTE"])
            attester = Account.create().address
            body = {"attester": attester, "review": {"subject": merchant.did, "ratingValue": 4}}
            codes = [httpx.post(cluster.urls[i % 2] + "/v1/reviews/prepare", json=body, timeout=30).status_code
                     for i in range(limit + 1)]  # fmt: skip
            assert codes == [200] * limit + [429]
        except BaseException:
            cluster.print_logs(tail=3000)
            raise
        finally:
            cluster.stop()
            server.httpd.shutdown()
            server.httpd.server_close()
