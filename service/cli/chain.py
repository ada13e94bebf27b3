"""``omatrust chain bootstrap``: make the configured chain usable (idempotent).
``omatrust chain adopt``: move a store onto the configured chain (when the service refuses to start because the
store refers to another chain; see docs/chain.md).

On a dev node (``web3_clientVersion`` mentions anvil/hardhat) EAS and SchemaRegistry are placed at the configured
addresses when they have no code; on any chain the User Review schema is registered when ``getSchema(uid)`` is
empty, paid by the relayer key. On a dev node with a relayer key it also places the test USDC
(``service.chain.token``), mints it to the dev accounts and prints its ``paymentToken`` JSON as the last line.
Reads ``OMATRUST_RPC_URL``, ``OMATRUST_EAS_ADDRESS``,
``OMATRUST_SCHEMA_REGISTRY_ADDRESS``, ``OMATRUST_RELAYER_KEY``. The key is never printed.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chain_command", required=True)
    boot = sub.add_parser("bootstrap", help="place EAS on a dev node if missing; register the User Review schema")
    boot.add_argument("--rpc-url", help="JSON-RPC URL (default: OMATRUST_RPC_URL)")
    boot.add_argument("--timeout", type=float, default=10.0, help="RPC timeout in seconds")
    sub.add_parser(
        "adopt",
        help="re-publish on the configured chain the reviews whose attestations it lacks (expired: publish-failed)",
    )


def run(args: argparse.Namespace) -> int:
    if args.chain_command == "adopt":
        return adopt()
    return bootstrap(args)


def adopt() -> int:
    """Relabel, re-queue or fail every row that refers to another chain; the next ``omatrust serve`` publishes."""
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from service.errors import ChainRejected, CouldNotCheck
    from service.wiring import load_settings, wire
    from service.workflows.chain_identity import adopt as adopt_store
    from service.workflows.chain_identity import check_chain

    try:
        wired = wire(load_settings(), publisher=False, check_chain=False)
    except (SQLAlchemyError, CouldNotCheck, ChainRejected) as exc:
        print(f"chain adopt: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        rt = wired.runtime
        print(f"configured chain: {rt.eas.identity.describe()}")
        report = adopt_store(rt=rt, now=int(time.time()))
        check_chain(rt=rt, now=int(time.time()))  # must pass now
    except CouldNotCheck as exc:
        print(f"chain adopt: chain unavailable: {exc} (run again)", file=sys.stderr)
        return 3
    finally:
        wired.close()
    print(f"chain adopt: {report.summary()}")
    if report.requeued:
        print("start `omatrust serve` to publish them")
    return 0


def bootstrap(args: argparse.Namespace) -> int:
    from eth_account import Account

    from service.chain import deploy, token
    from service.errors import ChainRejected, ChainUnavailable, MalformedInput
    from service.wiring import connect_chain, load_settings

    settings = load_settings()
    rpc_url = args.rpc_url or settings.rpc_url
    if not rpc_url:
        print("chain bootstrap: no RPC URL (set OMATRUST_RPC_URL); the embedded chain needs no bootstrap")
        return 0
    payer = None
    if settings.relayer_key is not None:
        try:
            payer = Account.from_key(settings.relayer_key.get_secret_value().strip())
        except (ValueError, TypeError):
            print("chain bootstrap: OMATRUST_RELAYER_KEY is not a valid private key", file=sys.stderr)
            return 2
        print(f"relayer: {payer.address}")
    try:
        w3 = connect_chain(rpc_url=rpc_url, timeout=args.timeout)
        deploy.bootstrap(
            w3=w3,
            eas_address=settings.eas_address,
            registry_address=settings.schema_registry_address,
            payer=payer,
            say=print,
        )
        if payer is not None and deploy.is_dev_node(client_version=str(w3.client_version)):
            # the test USDC (EIP-3009) for x402 payments; its description is the last line, as JSON
            print(json.dumps(token.bootstrap_dev_node(w3=w3, funder=payer, say=print).to_json()))
    except ChainUnavailable as exc:
        print(f"chain bootstrap: chain unavailable: {exc.detail}", file=sys.stderr)
        return 3
    except (ChainRejected, MalformedInput) as exc:
        print(f"chain bootstrap: {exc}", file=sys.stderr)
        return 1
    return 0
