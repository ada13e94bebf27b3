"""Payment-backed review tests run through the real app with real parts: a fresh database, the embedded EVM (and an
anvil node in the anvil tests) with Circle's FiatTokenV2_2 as test USDC, payments settled by the PyPI x402
facilitator, a real HTTPS did:web host and a DNS server on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.chain.embedded import EmbeddedChain, start_embedded_chain
from service.chain.token import TOKEN_ADDRESS, mint_to, place_on_embedded
from service.cli.demo_kit import Merchant, Reviewer
from service.config import Settings
from service.domain import ArtifactKind, OfferPayload
from service.payments.reader import PaymentReader
from service.payments.sources import TxSource, Web3Source
from service.proofs import proof_wrapper, sign_offer_eip712
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.workflows.runtime import Runtime
from tests.payments.settle import Settler
from tests.support import app_wiring
from tests.support.app_wiring import wired_service
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

# the session-wide loopback did:web and DNS servers (fixtures, shared by tests/api and tests/payments)
didweb = app_wiring.didweb
dns = app_wiring.dns
PRICE = 10_000  # 0.01 test USDC


@pytest.fixture
def chain() -> EmbeddedChain:
    """The service's own chain, with the test USDC placed (as ``omatrust serve`` does on a new embedded chain)."""
    return start_embedded_chain(on_first_creation=(place_on_embedded,))


@pytest.fixture
def embedded_network(chain: EmbeddedChain) -> str:
    return f"eip155:{chain.w3.eth.chain_id}"


@pytest.fixture
def merchant(didweb: DidWebHost, embedded_network: str) -> Merchant:
    m = Merchant(host=didweb.host, network=embedded_network)
    didweb.set_document(m.did_document())
    return m


@pytest.fixture
def reviewer(chain: EmbeddedChain) -> Reviewer:
    r = Reviewer()
    mint_to(w3=chain.w3, holder=r.address, amount=100 * PRICE, lock=chain.lock)
    return r


@pytest.fixture
def settler(chain: EmbeddedChain) -> Settler:
    return Settler(w3=chain.w3, gas_key="0x" + bytes(chain.dev_accounts[0].key).hex(), lock=chain.lock)


def signed_offer(merchant: Merchant, *, network: str, asset: str = TOKEN_ADDRESS, pay_to: str | None = None,
                 amount: int = PRICE, path: str = "/weather") -> dict[str, Any]:  # fmt: skip
    """An offer signed by the merchant's authorized key, for the test USDC on ``network``."""
    payload = OfferPayload(
        version=1, resource_url=merchant.url(path), scheme="exact", network=network, asset=asset,
        pay_to=pay_to or merchant.address, amount=str(amount), valid_until=0,
    )  # fmt: skip
    return proof_wrapper(artifact=sign_offer_eip712(payload=payload, private_key=merchant.evm_key),
                         kind=ArtifactKind.OFFER)  # fmt: skip


def receipt_for(merchant: Merchant, reviewer: Reviewer | LocalAccount, tx: str, **kw: Any) -> dict[str, Any]:
    payer = reviewer.address
    return merchant.receipt(payer=payer, issued_at=int(time.time()) - 30, transaction=tx, **kw)


@dataclass
class Service:
    """The wired service under test and its payment reader."""

    client: TestClient
    rt: Runtime
    payments: PaymentReader
    extra_sources: dict[str, TxSource] = field(default_factory=dict)


@pytest.fixture
def make_service(
    tmp_path: Path, chain: EmbeddedChain, didweb: DidWebHost, dns: LoopbackDns
) -> Iterator[Callable[..., Service]]:
    """Build the service: its own chain is the embedded one (serving its own network id, as wiring does);
    ``sources`` adds payment networks; ``confirmations`` is the settlement threshold."""
    stack: list[Any] = []

    def build(*, sources: dict[str, TxSource] | None = None, confirmations: int = 1) -> Service:
        url_cm = fresh_database_url(tmp_path / f"db{len(stack)}")
        (tmp_path / f"db{len(stack)}").mkdir()
        url = url_cm.__enter__()
        engine = make_engine(url=url)
        upgrade(engine=engine)
        own = {f"eip155:{chain.w3.eth.chain_id}": Web3Source(w3=chain.w3, lock=chain.lock)}
        payments = PaymentReader(sources={**own, **(sources or {})}, min_confirmations=confirmations)
        wired = wired_service(engine=engine, chain=chain, didweb=didweb, dns=dns, payments=payments)
        rt = wired.runtime
        client = TestClient(create_app(Settings(rate_limit_per_minute=1000), wired=wired),
                            raise_server_exceptions=False)  # fmt: skip
        client.__enter__()
        stack.append((client, wired, url_cm))
        return Service(client=client, rt=rt, payments=payments)

    yield build
    for client, wired, url_cm in reversed(stack):
        client.__exit__(None, None, None)
        wired.close()
        url_cm.__exit__(None, None, None)
