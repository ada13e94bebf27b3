"""``omatrust chain bootstrap``: make the configured chain usable (idempotent).

On a dev node (``web3_clientVersion`` mentions anvil/hardhat) EAS and SchemaRegistry are placed at the configured
addresses when they have no code; on any chain the User Review schema is registered when ``getSchema(uid)`` is
empty, paid by the relayer key. Reads ``OMATRUST_RPC_URL``, ``OMATRUST_EAS_ADDRESS``,
``OMATRUST_SCHEMA_REGISTRY_ADDRESS``, ``OMATRUST_RELAYER_KEY``. The key is never printed.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chain_command", required=True)
    boot = sub.add_parser("bootstrap", help="place EAS on a dev node if missing; register the User Review schema")
    boot.add_argument("--rpc-url", help="JSON-RPC URL (default: OMATRUST_RPC_URL)")
    boot.add_argument("--timeout", type=float, default=10.0, help="RPC timeout in seconds")


def run(args: argparse.Namespace) -> int:
    from eth_account import Account

    from service.chain import deploy
    from service.chain.rpc import connect
    from service.config import Settings
    from service.errors import ChainRejected, ChainUnavailable, MalformedInput

    settings = Settings()
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
        deploy.bootstrap(
            w3=connect(rpc_url=rpc_url, timeout=args.timeout),
            eas_address=settings.eas_address,
            registry_address=settings.schema_registry_address,
            payer=payer,
            say=print,
        )
    except ChainUnavailable as exc:
        print(f"chain bootstrap: chain unavailable: {exc.detail}", file=sys.stderr)
        return 3
    except (ChainRejected, MalformedInput) as exc:
        print(f"chain bootstrap: {exc}", file=sys.stderr)
        return 1
    return 0
