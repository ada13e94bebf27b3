"""Nothing accepted is lost across a restart: the outbox drains when the service starts again."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.chain.embedded import EmbeddedChain
from service.cli.demo_kit import Reviewer
from service.config import Settings
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.wiring import Wired
from service.workflows.publish import PublishLoop
from service.workflows.runtime import Runtime
from tests.api.conftest import wait_confirmed
from tests.support.db import fresh_database_url


def _wired(url: str, chain: EmbeddedChain, *, publisher: bool) -> Wired:
    engine = make_engine(url=url)
    upgrade(engine=engine)
    rt = Runtime(
        engine=engine,
        eas=chain.client(),
        resolver=DidResolver(fetcher=SafeFetcher(timeout=1.0)),
        controllers=ControllerResolver(nameservers=("127.0.0.1:9",), timeout=0.2),
    )
    loop = PublishLoop(rt=rt, interval=0.05) if publisher else None
    if loop is not None:
        rt.publisher_wakeup = loop.wakeup
    return Wired(runtime=rt, publisher=loop, closers=[engine.dispose])


def test_pending_reviews_are_published_after_restart(tmp_path: Path, chain: EmbeddedChain) -> None:
    with fresh_database_url(tmp_path) as url:
        first = _wired(url, chain, publisher=False)  # the process "dies" before its publisher ran
        ids = []
        with TestClient(create_app(Settings(), wired=first)) as c:
            for rating in (1, 3, 5):
                resp = Reviewer().submit(c, subject="did:web:restart.example", ratingValue=rating)
                assert resp.status_code == 201, resp.text
                assert resp.json()["attestation"]["state"] == "pending"
                ids.append(resp.json()["id"])
        first.close()

        second = _wired(url, chain, publisher=True)
        with TestClient(create_app(Settings(), wired=second)) as c:
            uids = {wait_confirmed(c, rid)["attestation"]["uid"] for rid in ids}
        second.close()
    assert len(uids) == 3
    eas = chain.client()
    assert all(eas.get_attestation(uid=uid) is not None for uid in uids)
