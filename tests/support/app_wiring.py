"""The service wired in-process for the API tests (tests/api, tests/payments): session-wide loopback did:web and DNS
servers, and a runtime on a fresh database and the embedded chain that publishes quickly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine

from service.chain.embedded import EmbeddedChain
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.payments.reader import PaymentReader
from service.wiring import Wired
from service.workflows.evaluate import ReviewPolicy
from service.workflows.publish import PublishLoop
from service.workflows.runtime import Runtime
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


@pytest.fixture(scope="session")
def didweb() -> Iterator[DidWebHost]:
    host = DidWebHost().start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def dns() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


def wired_service(
    *,
    engine: Engine,
    chain: EmbeddedChain,
    didweb: DidWebHost,
    dns: LoopbackDns,
    clock: Callable[[], float] = time.time,
    payments: PaymentReader | None = None,
) -> Wired:
    """The service on ``engine`` (migrated) and ``chain``: did:web documents from ``didweb`` (its test CA), DNS from
    ``dns``, receipts up to 7 days old, a publish loop polling every 50 ms. Closing it disposes ``engine``."""
    fetcher = SafeFetcher(timeout=3.0, insecure_hosts=frozenset({didweb.host}), ca_file=didweb.ca_pem_path)
    rt = Runtime(
        engine=engine,
        eas=chain.client(),
        resolver=DidResolver(fetcher=fetcher, ttl=0),
        controllers=ControllerResolver(nameservers=(dns.nameserver,), timeout=1.0),
        policy=ReviewPolicy(receipt_max_age=7 * 24 * 3600, clock_skew=300),
        clock=clock,
        payments=payments,
    )
    loop = PublishLoop(rt=rt, batch_size=10, interval=0.05)
    rt.publisher_wakeup = loop.wakeup
    rt.ephemeral_chain = True
    return Wired(runtime=rt, publisher=loop, closers=[engine.dispose])
