"""Build the runtime from settings: engine, chain client, resolvers, publisher. Used by the app factory and the CLI."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from service.config import Settings
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.workflows.evaluate import ReviewPolicy
from service.workflows.publish import PublishLoop
from service.workflows.runtime import Runtime

log = logging.getLogger("omatrust")


@dataclass
class Wired:
    runtime: Runtime
    publisher: PublishLoop | None
    closers: list[Any] = field(default_factory=list)

    def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        for close in reversed(self.closers):
            close()


def build_chain(settings: Settings) -> tuple[Any, bool]:
    """An EasClient for the configured chain (and whether it is ephemeral): the embedded EVM when no RPC URL is set."""
    from service.chain.eas import EasClient

    if not settings.rpc_url:
        from service.chain.embedded import start_embedded_chain

        chain = start_embedded_chain()
        log.warning("using the embedded in-process EVM: ephemeral, state is lost on restart (chain id %s)",
                    chain.w3.eth.chain_id)  # fmt: skip
        return chain.client(), True
    from eth_account import Account

    from service.chain.rpc import connect

    w3 = connect(rpc_url=settings.rpc_url, timeout=15)
    relayer = Account.from_key(settings.relayer_key.get_secret_value()) if settings.relayer_key else None
    return EasClient(w3=w3, eas_address=settings.eas_address, relayer=relayer), False


def build_identity(settings: Settings) -> tuple[DidResolver, ControllerResolver]:
    """did:web resolver (SSRF-safe fetcher, TTL cache) and DNS ``_controllers`` resolver from settings."""
    insecure = settings.insecure_hosts()
    fetcher = SafeFetcher(
        timeout=settings.fetch_timeout_seconds, insecure_hosts=insecure, ca_file=settings.did_web_ca_file or None
    )
    resolver = DidResolver(fetcher=fetcher, ttl=settings.did_cache_ttl_seconds, insecure_hosts=insecure)
    controllers = ControllerResolver(
        nameservers=settings.nameservers(), timeout=settings.dns_timeout_seconds, ttl=settings.did_cache_ttl_seconds
    )
    return resolver, controllers


def wire(settings: Settings, *, publisher: bool = True, migrate: bool = True) -> Wired:
    """Build everything the service runs on. Migrations run first so a fresh SQLite file just works."""
    engine = make_engine(url=settings.database_url)
    if migrate:
        upgrade(engine=engine)
    eas, ephemeral = build_chain(settings)
    resolver, controllers = build_identity(settings)
    runtime = Runtime(
        engine=engine,
        eas=eas,
        resolver=resolver,
        controllers=controllers,
        policy=ReviewPolicy(receipt_max_age=settings.receipt_max_age_seconds, clock_skew=settings.clock_skew_seconds),
        clock=time.time,
        ephemeral_chain=ephemeral,
    )
    loop = None
    if publisher:
        loop = PublishLoop(
            rt=runtime, batch_size=settings.publish_batch_size, interval=settings.publish_interval_seconds
        )
        runtime.publisher_wakeup = loop.wakeup
    return Wired(runtime=runtime, publisher=loop, closers=[engine.dispose])
