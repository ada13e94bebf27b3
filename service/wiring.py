"""Build the runtime from settings: engine, chain client, resolvers, publisher. Used by the app factory and the CLI."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from service.config import Settings
from service.errors import CouldNotCheck
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.lookup_limits import LookupLimiter
from service.payments.reader import PaymentReader
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.omatrust import RecentAttestations
from service.trust_anchors import load_trust_anchors
from service.workflows.evaluate import ReviewPolicy
from service.workflows.group_commit import GroupCommit
from service.workflows.publish import PublishLoop
from service.workflows.publish_guard import exclusive_rounds
from service.workflows.reputation import DbContext
from service.workflows.runtime import Runtime
from service.workflows.score_audit import AggregateRebuilder

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


def load_settings(**overrides: Any) -> Settings:
    """The settings every face starts from: ``OMATRUST_*`` environment (and ``.env``), with ``overrides`` applied.

    Raises:
        pydantic.ValidationError: a setting is malformed.
    """
    settings = Settings()
    return settings.model_copy(update=overrides) if overrides else settings


def _proxied(url: str) -> bool:
    """True when the environment routes ``url`` through an HTTP proxy (``HTTP(S)_PROXY`` without a ``NO_PROXY``
    match), as ``requests`` would."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")


def connect_chain(*, rpc_url: str, timeout: float = 10.0) -> Any:
    """A ``Web3`` JSON-RPC client for ``rpc_url`` (nothing is sent until first used); for commands that talk to a
    node without the runtime (bootstrap, ERC-8004 feedback, demo)."""
    from service.chain.rpc import connect

    return connect(rpc_url=rpc_url, timeout=timeout)


def build_chain(settings: Settings) -> tuple[Any, bool]:
    """An EasClient for the configured chain (and whether it is ephemeral): the embedded EVM when no RPC URL is set."""
    from service.chain.eas_relayer import EasClient

    if not settings.rpc_url:
        from service.chain.embedded import chain_path_for, start_embedded_chain

        path = chain_path_for(database_url=settings.database_url, configured=settings.embedded_chain_path)
        chain = start_embedded_chain(path=path, on_first_creation=first_creation_hooks(settings))
        if not chain.writable:
            log.warning("embedded chain %s is written by another process: opened read-only (as of now)", chain.path)
        if chain.ephemeral:
            log.warning("using the embedded in-process EVM: ephemeral, state is lost on restart (chain id %s)",
                        chain.w3.eth.chain_id)  # fmt: skip
        else:
            log.info("embedded chain %s: %s (chain id %s, genesis %s, %.2fs)", chain.path,
                     "created" if chain.created else "resumed", chain.w3.eth.chain_id, chain.genesis_hash,
                     chain.startup_seconds)  # fmt: skip
        return chain.client(), chain.ephemeral
    from eth_account import Account

    from service.chain.rpc import connect

    limiter = build_lookup_limiter(settings)
    w3 = connect(rpc_url=settings.rpc_url, timeout=15, limiter=limiter)
    relayer = Account.from_key(settings.relayer_key.get_secret_value()) if settings.relayer_key else None
    client = EasClient(w3=w3, eas_address=settings.eas_address, relayer=relayer)
    if settings.rpc_url.startswith(("http://", "https://")) and not _proxied(settings.rpc_url):
        # the per-submission getNonce skips web3's transport (which honours HTTP(S)_PROXY: a proxied node keeps it)
        client.post_reads_directly(rpc_url=settings.rpc_url, timeout=15, limiter=limiter)
    return client, False


def first_creation_hooks(settings: Settings) -> tuple[Any, ...]:
    """One-time setup run when the embedded chain is created (not when a chain file is resumed): each hook gets the
    ``EmbeddedChain``. The place to deploy things every new dev chain should have (e.g. a test token)."""
    from service.chain.token import place_on_embedded

    return (place_on_embedded,)


def build_payments(settings: Settings, *, eas: Any = None) -> PaymentReader:
    """Payment-evidence reader: every network of ``OMATRUST_PAYMENT_RPC_URLS`` plus the service's own chain under
    its own network id (the embedded chain in process, a configured RPC_URL over HTTP). Without ``eas`` (batch
    commands that start no chain) the own chain is included only when it is an RPC_URL (its chain id is read).

    Raises:
        ValueError: a malformed ``OMATRUST_PAYMENT_RPC_URLS``.
    """
    from service.payments.networks import evm_network, parse_rpc_urls
    from service.payments.sources import JsonRpcSource, TxSource, Web3Source

    timeout = settings.payment_rpc_timeout_seconds
    sources: dict[str, TxSource] = {
        network: JsonRpcSource(url=url, timeout=timeout)
        for network, url in parse_rpc_urls(settings.payment_rpc_urls).items()
    }
    try:
        if eas is not None:
            own: str | None = evm_network(eas.chain_id)
        elif settings.rpc_url:
            from service.chain.rpc import connect, rpc_errors

            with rpc_errors("eth_chainId"):
                own = evm_network(int(connect(rpc_url=settings.rpc_url, timeout=timeout).eth.chain_id))
        else:
            own = None
    except CouldNotCheck:
        own = None  # the node is down at start: its payments stay indeterminate until restarted
        log.warning("payment checks: could not read the chain id of the service's own chain")
    if own is not None and own not in sources:
        own_source: TxSource = (
            JsonRpcSource(url=settings.rpc_url, timeout=timeout) if settings.rpc_url
            else Web3Source(w3=eas.w3, lock=getattr(eas, "_lock", None))
        )  # fmt: skip
        sources[own] = own_source
    return PaymentReader(sources=sources, min_confirmations=settings.payment_confirmations)


def build_lookup_limiter(settings: Settings) -> LookupLimiter:
    """Caps on outbound look-ups in flight (per host and overall); one per client kind (did:web+DNS, RPC)."""
    return LookupLimiter(total=settings.lookup_max_in_flight, per_host=settings.lookup_max_per_host,
                         wait=settings.lookup_wait_seconds)  # fmt: skip


def build_identity(settings: Settings) -> tuple[DidResolver, ControllerResolver]:
    """did:web resolver (SSRF-safe fetcher, TTL cache) and DNS ``_controllers`` resolver from settings, sharing one
    cap on look-ups in flight."""
    insecure = settings.insecure_hosts()
    limiter = build_lookup_limiter(settings)
    fetcher = SafeFetcher(
        timeout=settings.fetch_timeout_seconds, insecure_hosts=insecure, ca_file=settings.did_web_ca_file or None,
        limiter=limiter,
    )  # fmt: skip
    resolver = DidResolver(fetcher=fetcher, ttl=settings.did_cache_ttl_seconds, insecure_hosts=insecure,
                           failure_ttl=settings.lookup_failure_ttl_seconds)  # fmt: skip
    controllers = ControllerResolver(
        nameservers=settings.nameservers(), timeout=settings.dns_timeout_seconds, ttl=settings.did_cache_ttl_seconds,
        limiter=limiter,
    )  # fmt: skip
    return resolver, controllers


def build_relayer_clients(settings: Settings, *, eas: Any) -> dict[str, Any]:
    """One EasClient per configured relayer key (``RELAYER_KEYS``, else ``RELAYER_KEY``) on the same node as
    ``eas``, keyed by lower-case relayer address, in configuration order (a key's slot is its position)."""
    from eth_account import Account

    from service.chain.eas_relayer import EasClient

    clients: dict[str, Any] = {}
    for key in settings.relayer_key_list():
        account = Account.from_key(key)
        clients[account.address.lower()] = EasClient(
            w3=eas.w3, eas_address=eas.eas_address, relayer=account, lock=getattr(eas, "_lock", None),
            preflight=eas.preflight,
        )  # fmt: skip
        clients[account.address.lower()].share_direct_reads(source=eas)
    return clients


def build_rate_limit_strategy(settings: Settings) -> Any:
    """A ``limits`` sliding-window limiter on the Redis of ``OMATRUST_REDIS_URL`` (shared by every API process), or
    None when no Redis is configured (each process then limits on its own)."""
    if not settings.redis_url:
        return None
    from limits.storage import storage_from_string
    from limits.strategies import SlidingWindowCounterRateLimiter

    return SlidingWindowCounterRateLimiter(storage_from_string(settings.redis_url))


def job_enqueuer(settings: Settings) -> Any:
    """``attester -> Rider``: the insert of the publish job of the attester's relayer key, to write with the
    review's rows (PostgreSQL with workers, see service.store.jobqueue); None when there is no task queue (SQLite)
    or no relayer key."""
    from eth_account import Account

    from service.store.jobqueue import publish_job, relayer_slot

    relayers = [Account.from_key(k).address.lower() for k in settings.relayer_key_list()]
    if not relayers or not settings.database_url.startswith("postgresql"):
        return None

    def job(attester: str) -> Any:
        return publish_job(relayer=relayers[relayer_slot(attester=attester, relayers=len(relayers))])

    return job


def _check_chain(settings: Settings, runtime: Runtime, engine: Any) -> None:
    """Chain identity and confirmations (docs/chain.md). Raises ChainMismatch (logged first). A node that cannot
    be reached at start does not stop the service (it answers 503 until the node is back): the identity is then
    checked at the next start, and rows written meanwhile are claimed then if their UIDs are on the chain."""
    from service.chain.confirmations import OTHER, confirmations_for
    from service.errors import ChainMismatch
    from service.workflows.chain_identity import check_chain

    try:
        runtime.confirmations = confirmations_for(chain_id=runtime.eas.chain_id, configured=settings.confirmations)
    except CouldNotCheck:  # chain id unknown: the cautious default until the next start
        runtime.confirmations = settings.confirmations or OTHER
    try:
        runtime.chain_ref = check_chain(rt=runtime, now=int(time.time()))
    except ChainMismatch as exc:
        log.error("refusing to start: %s", exc.detail)
        engine.dispose()
        raise
    except CouldNotCheck as exc:
        log.warning("chain identity not checked (the node did not answer: %s); it is checked at the next start",
                    exc.detail)  # fmt: skip


def database(settings: Settings, *, migrate: bool = True, revision: str = "head") -> Engine:
    """The engine of ``settings.database_url``, migrated to ``revision`` first unless ``migrate`` is False."""
    engine = make_engine(url=settings.database_url)
    if migrate:
        upgrade(engine=engine, revision=revision)
    return engine


def migrate_database(engine: Engine) -> None:
    """Bring an engine made by :func:`database` (with ``migrate=False``) to the latest schema. Idempotent."""
    upgrade(engine=engine)


def review_policy(settings: Settings) -> ReviewPolicy:
    """Receipt freshness and clock skew from settings."""
    return ReviewPolicy(receipt_max_age=settings.receipt_max_age_seconds, clock_skew=settings.clock_skew_seconds)


def score_context(settings: Settings, *, migrate: bool = False) -> DbContext:
    """A database-only context for the score commands (no chain, no resolvers)."""
    return DbContext(engine=database(settings, migrate=migrate))


def wire(
    settings: Settings, *, publisher: bool | None = None, migrate: bool = True, check_chain: bool = True
) -> Wired:
    """Build everything the service runs on. Migrations run first so a fresh SQLite file just works.

    ``publisher``: run the background jobs in process once started (publishing, periodic sync; default:
    ``settings.publisher_enabled``). Stale score aggregates
    met by any read or write are rebuilt by a background :class:`AggregateRebuilder`. ``check_chain``: compare the
    configured chain with the one the store refers to (raises ChainMismatch; off only for ``omatrust chain adopt``).
    """
    engine = database(settings, migrate=migrate)
    eas, ephemeral = build_chain(settings)
    payments = build_payments(settings, eas=eas)
    resolver, controllers = build_identity(settings)
    runtime = Runtime(
        engine=engine,
        eas=eas,
        resolver=resolver,
        controllers=controllers,
        policy=review_policy(settings),
        clock=time.time,
        ephemeral_chain=ephemeral,
        payments=payments,
        anchors=load_trust_anchors(path=settings.trust_anchors or None),
        submissions=GroupCommit(max_group=settings.submit_group_max, writers=settings.submit_group_writers),
        onchain_recent=RecentAttestations(ttl=settings.onchain_cache_seconds),
    )
    if check_chain:
        _check_chain(settings, runtime, engine)
    rebuilder = AggregateRebuilder(rt=runtime)
    runtime.aggregates_stale = rebuilder.trigger
    loop = None
    if settings.publisher_enabled if publisher is None else publisher:
        # the worker's job bodies, run in this process (service.workflows.jobs; docs/deploy.md "In-process jobs").
        # Periodic sync only on SQLite: several serve processes on one PostgreSQL would sync at once (workers don't).
        sync_every = 0.0 if engine.dialect.name == "postgresql" else float(settings.sync_interval_seconds)
        loop = PublishLoop(
            rt=runtime, batch_size=settings.publish_batch_size, interval=settings.publish_interval_seconds,
            linger=settings.publish_linger_seconds, sync_every=sync_every,
        )  # fmt: skip
        runtime.publisher_wakeup = loop.wakeup
        # several `serve` processes on one PostgreSQL: one publishes at a time per relayer key
        exclusive_rounds(publisher=loop.publisher, engine=engine, client=eas)
    else:
        runtime.publish_job = job_enqueuer(settings)
    return Wired(runtime=runtime, publisher=loop, closers=[engine.dispose])


def build_erc8004(settings: Settings, *, runtime: Runtime) -> Any:
    """The ERC-8004 indexing parts (``service.workflows.erc8004_sync.Erc8004Deps``) for the configured chain, or None
    when no registries are known for its chain id (configured ``ERC8004_REGISTRIES`` or the Base defaults).

    Raises:
        ValueError: malformed ``ERC8004_REGISTRIES``.
        ChainUnavailable: the chain id could not be read.
    """
    from service.chain.erc8004 import RegistryClient, parse_registries, registries_for
    from service.workflows.erc8004_fetch import UriFetcher
    from service.workflows.erc8004_sync import Erc8004Deps

    eas = runtime.eas
    registries = registries_for(chain_id=eas.chain_id, configured=parse_registries(settings.erc8004_registries))
    if registries is None:
        return None
    fetcher = SafeFetcher(
        timeout=settings.fetch_timeout_seconds, max_bytes=settings.erc8004_file_max_bytes,
        insecure_hosts=settings.insecure_hosts(), ca_file=settings.did_web_ca_file or None,
        limiter=build_lookup_limiter(settings),
    )  # fmt: skip
    files = UriFetcher(
        fetcher=fetcher, ipfs_gateway=settings.erc8004_ipfs_gateway, max_bytes=settings.erc8004_file_max_bytes
    )
    client = RegistryClient(w3=eas.w3, registries=registries, lock=getattr(eas, "_lock", None))
    return Erc8004Deps(engine=runtime.engine, client=client, files=files, payments=runtime.payments,
                      clock=runtime.clock)  # fmt: skip
