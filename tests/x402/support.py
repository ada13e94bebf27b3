"""Real parts for the x402 payment tests: an anvil node with EAS and the test USDC (as `omatrust chain bootstrap`
leaves it), the SDK facilitator over HTTP, our merchant app on loopback, and a real `omatrust serve` on that chain.

Every server binds 127.0.0.1 on a free port; readiness is waited for by probing, never by sleeping a fixed time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from service.chain import deploy, token
from service.chain.token import PaymentToken
from service.x402.facilitator import build_facilitator, facilitator_app
from service.x402.merchant import MerchantConfig, create_merchant_app
from service.x402.signer import OfferReceiptSigner, did_web
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, free_port

EAS = "0x4200000000000000000000000000000000000021"
REGISTRY = "0x4200000000000000000000000000000000000020"
PRICE = 10_000
OMATRUST = [sys.executable, "-m", "service.cli.main"]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout}s")
        time.sleep(0.05)


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1:<port> in a thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=20, what="uvicorn")
        assert self.server.started, "server failed to start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class PaymentChain:
    """anvil with EAS, the User Review schema and the test USDC; the SDK facilitator served over HTTP."""

    node: AnvilNode
    w3: Web3
    token: PaymentToken
    facilitator_url: str
    _next_payer: int = 2

    def payer(self) -> LocalAccount:
        """A fresh payer funded with test USDC (minted; payers need no ETH: EIP-3009 is gasless for them)."""
        account: LocalAccount = Account.create()
        token.mint_to(w3=self.w3, holder=account.address, amount=100 * PRICE)
        return account

    def balance(self, holder: str) -> int:
        return token.balance_of(w3=self.w3, holder=holder)


@contextmanager
def payment_chain() -> Iterator[PaymentChain]:
    with AnvilNode.start() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        relayer = Account.from_key(ANVIL_DEV_KEY_0)
        deploy.bootstrap(w3=w3, eas_address=EAS, registry_address=REGISTRY, payer=relayer)
        placed = token.bootstrap_dev_node(w3=w3, funder=relayer, say=lambda _l: None)
        facilitator = build_facilitator(w3=Web3(Web3.HTTPProvider(node.url)),
                                        private_key="0x" + bytes(token.FACILITATOR.key).hex())  # fmt: skip
        with Served(facilitator_app(facilitator)) as served:
            yield PaymentChain(node=node, w3=w3, token=placed, facilitator_url=served.url)


@dataclass
class Service:
    base: str
    env: dict[str, str]
    merchant_ports: list[int] = field(default_factory=list)


@contextmanager
def omatrust_service(chain: PaymentChain, workdir: Path, merchant_ports: list[int]) -> Iterator[Service]:
    """`omatrust serve` on the anvil chain, allowed to fetch did.json over http from the given loopback ports."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMATRUST_")}
    env.update(
        OMATRUST_DATABASE_URL=f"sqlite:///{workdir / 'service.db'}",
        OMATRUST_RPC_URL=chain.node.url,
        OMATRUST_RELAYER_KEY=ANVIL_DEV_KEY_0,
        OMATRUST_DID_WEB_INSECURE_HOSTS=",".join(f"localhost:{p}" for p in merchant_ports),
    )
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen([*OMATRUST, "serve", "--port", str(port)], env=env, cwd=workdir, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (workdir / "serve.log").read_text()[-3000:]
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=90, what="omatrust serve")
        yield Service(base=base, env=env, merchant_ports=merchant_ports)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


@pytest.fixture(scope="module")
def chain() -> Iterator[PaymentChain]:
    """The payment chain, one per test module (import the fixture into the module)."""
    with payment_chain() as c:
        yield c


@pytest.fixture(scope="module")
def service(chain: PaymentChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`omatrust serve` on ``chain``, one per test module; did.json may be fetched over http from the three
    loopback ports in ``Service.merchant_ports`` (for the module's merchants)."""
    with omatrust_service(chain, tmp_path_factory.mktemp("serve"), [free_port() for _ in range(3)]) as s:
        yield s


def python_merchant(
    chain: PaymentChain,
    *,
    port: int,
    signer_format: str = "eip712",
    amount: int = PRICE,
    review_provider: str | None = None,
    facilitator: Any = None,
) -> tuple[Any, MerchantConfig]:
    """Our merchant app (in-process SDK facilitator by default) for ``localhost:<port>``."""
    did = did_web(f"localhost:{port}")
    signer = OfferReceiptSigner.eip712(did=did) if signer_format == "eip712" else OfferReceiptSigner.jws(did=did)
    config = MerchantConfig(
        public_url=f"http://localhost:{port}", network=chain.token.network, pay_to=Account.create().address,
        asset=chain.token.address, asset_name=chain.token.name, asset_version=chain.token.version, amount=str(amount),
        signer=signer, review_provider=review_provider,
    )  # fmt: skip
    if facilitator is None:
        facilitator = build_facilitator(w3=Web3(Web3.HTTPProvider(chain.node.url)),
                                        private_key="0x" + bytes(token.FACILITATOR.key).hex())  # fmt: skip
    return create_merchant_app(config=config, facilitator=facilitator), config
