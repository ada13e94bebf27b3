"""``omatrust facilitator``: a local x402 facilitator (the PyPI ``x402`` SDK's ``x402Facilitator``, exact EVM scheme)
serving ``POST /verify``, ``POST /settle``, ``GET /supported`` for the configured chain.

Chain: ``--rpc-url`` → ``OMATRUST_RPC_URL`` → the embedded chain of the service at ``--api``
(``/v1/chain/rpc``). Gas: ``OMATRUST_FACILITATOR_KEY``, else the public dev facilitator key (funded on dev chains
by the test-token setup). Prints one JSON line ``{url, network, address}`` when ready.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4022)
    parser.add_argument("--rpc-url", help="JSON-RPC URL of the chain to settle on")
    parser.add_argument("--api", default="http://127.0.0.1:8402", help="the service (for its embedded chain)")


def run(args: argparse.Namespace) -> int:
    from eth_account import Account

    from service.cli.foreground import serve_foreground
    from service.cli.x402_chain import facilitator_key, rpc_url_for
    from service.wiring import connect_chain
    from service.x402.facilitator import build_facilitator, facilitator_app

    rpc_url = rpc_url_for(explicit=args.rpc_url, api=args.api)
    key = facilitator_key()
    try:
        w3 = connect_chain(rpc_url=rpc_url, timeout=30)
        facilitator = build_facilitator(w3=w3, private_key=key)
        network = f"eip155:{int(w3.eth.chain_id)}"
    except Exception as exc:
        print(f"facilitator: cannot use the chain at {rpc_url}: {exc}", file=sys.stderr)
        return 3
    ready = {"url": f"http://{args.host}:{args.port}", "network": network, "address": Account.from_key(key).address}
    return serve_foreground(facilitator_app(facilitator), host=args.host, port=args.port, ready=ready)
